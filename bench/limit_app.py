"""The limit: a bare WSGI callable answering constant JSON, no framework (bench reference)."""

BODY = b'{"date":"2026-06-01T00:00:00","prediction":1.0,"prediction_low":0.5,"prediction_high":2.0}\n'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def create_app():
    def app(environ, start_response):
        start_response("200 OK", HEADERS)
        return [BODY]

    return app
