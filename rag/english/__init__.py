"""What the reader knows of English and of news text, one kind of knowledge per module:
`nlp` (spaCy's small English pipeline, loaded once), `text` (words, stems, numbers),
`places` (country / state / city, from ISO 3166), `roles` (the slot of a verb a question
asks for), `tense` (background told as an earlier year)."""
