"""One HTTP/2 request with prior knowledge (h2c), for the Envoy tests that
must hold over HTTP/2 as over HTTP/1.1: repeated header fields are sent as
separate fields, as HTTP/2 clients send them (RFC 9113 §8.2.3 for cookies).

    h2_request.py PORT '{"method": "GET", "path": "/x", "headers": [["n", "v"], ...]}'

Prints {"status": int, "headers": [[name, value], ...], "body": str}.
"""

import json
import socket
import sys

import h2.config
import h2.connection
import h2.events


def main():
    port = int(sys.argv[1])
    spec = json.loads(sys.argv[2])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    conn.initiate_connection()
    headers = [
        (":method", spec.get("method", "GET")),
        (":path", spec["path"]),
        (":scheme", "http"),
        (":authority", spec.get("authority", "localhost")),
    ] + [tuple(h) for h in spec.get("headers", [])]
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, headers, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, response_headers, body, done = None, [], b"", False
    while not done:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                for name, value in event.headers:
                    if name == ":status":
                        status = int(value)
                    else:
                        response_headers.append([name, value])
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
    sock.close()
    print(json.dumps({"status": status, "headers": response_headers, "body": body.decode("utf-8", "replace")}))


if __name__ == "__main__":
    sys.exit(main())
