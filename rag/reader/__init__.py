"""The reader: from the numbered sentences of the focused context to an answer.

`answer_type` reads what kind of thing a question asks for; `candidates` finds spans of that
kind and `ranker` weighs them (its fitted weights are `ranker.json`); `lists` joins names a
sentence coordinates; `answerers` picks, quotes or refuses; `ground` checks an answer against
the sentences it cites and builds the quoted fallback; `freshness` shows a figure a newer
article revised. It never imports the command line, the HTTP API or the UI.
"""
