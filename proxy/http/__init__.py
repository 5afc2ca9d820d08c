"""The thin async shell: app wiring, the policed pipeline, the streamed relay, the upstream client."""
