"""The operator API and dashboard: a FastAPI app served by uvicorn in the CSMS's own event loop.

``app.create_app(csms)`` builds the app; ``server.ApiServer`` serves it; ``routes/`` holds one router per
resource; ``auth`` checks bearer tokens; ``errors`` turns every failure into a clear 4xx (never a 500 for bad
input).
"""
