"""The benchmark's peers: the same redaction work as the proxy does for the restricted caller, done by a
mitmproxy addon (`mitm_addon.py`) and by the floor of any Python relay (`floor_relay.py`). bench/run.py
starts them with bench/ on PYTHONPATH; they import nothing from the proxy.
"""
