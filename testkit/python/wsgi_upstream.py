"""An upstream that reads requests the way a Python web framework does, for
the Envoy tests of the request seam (tests/envoy_request_seam.rs).

The standard library's WSGI server percent-decodes the path into PATH_INFO
(so `%2F` becomes `/`) and hands every header to the application as an
`HTTP_*` variable, with `-` and `_` both turned into `_` (so `x-client-id`
and `x_client_id` are the same variable, values joined with a comma). The
application then resolves the path like a static-file or routing layer
(`posixpath.normpath`). Each request is answered 200 with JSON saying what
it read:

    {"method", "raw_path", "path_info", "served", "headers": {"HTTP_X": v}}

Prints its port on the first line of stdout, then serves until killed.
"""

import json
import posixpath
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class Handler(WSGIRequestHandler):
    def get_environ(self):
        env = super().get_environ()
        env["RAW_PATH"] = self.path
        return env

    def log_message(self, *args):
        pass


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def app(environ, start_response):
    path_info = environ.get("PATH_INFO", "")
    served = posixpath.normpath(path_info) if path_info else "/"
    body = json.dumps(
        {
            "method": environ["REQUEST_METHOD"],
            "raw_path": environ["RAW_PATH"],
            "path_info": path_info,
            "served": served,
            "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def main():
    server = make_server("127.0.0.1", 0, app, server_class=Server, handler_class=Handler)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
