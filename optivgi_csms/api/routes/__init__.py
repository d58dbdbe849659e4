"""One router per resource; :func:`optivgi_csms.api.app.create_app` includes them."""
