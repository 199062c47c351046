"""Problems and traces: data sets by name or path, prompt templates, teacher cold-start data, and
an offline synthetic task. `sources`, `templates` and `synthetic` are pure Python (no torch);
`teacher` adds httpx and tqdm. Importing this package imports none of its modules' heavy parts.
"""
