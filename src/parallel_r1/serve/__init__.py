"""An OpenAI-compatible HTTP server over the engine, in causal or structured (parallel) mode.

The only package that imports the web stack (FastAPI, uvicorn); nothing outside it imports it, so
`import parallel_r1` stays light. Entry points: `app.create_app`, `server.serve`.
"""
