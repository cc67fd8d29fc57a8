#!/usr/bin/env python3
"""GET http://127.0.0.1:PORT/PATH and print the status and the body."""
import sys, urllib.request

with urllib.request.urlopen("http://127.0.0.1:%s%s" % (sys.argv[1], sys.argv[2]), timeout=10) as r:
    print(r.status)
    print(r.read().decode())
