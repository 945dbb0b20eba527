"""The HTTP edge: routes, auth, errors, file endpoints."""
