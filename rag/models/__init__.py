"""The language models behind one small protocol (`generate.Generator`, and
`generate.CandidateScorer` for a model that can score the reader's candidates): llama.cpp in
process (`llama`, the packaged default), Hugging Face transformers, and any
OpenAI-compatible server (vLLM, llama.cpp's server). `generate.load_generator` picks one by
configuration."""
