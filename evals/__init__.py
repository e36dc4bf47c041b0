"""Evaluation suite: gold questions, metrics and the `rag eval` command."""
