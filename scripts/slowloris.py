#!/usr/bin/env python3
"""How many idle slowloris connections the server withstands while it keeps
answering: opens N connections that each send half a request head and then
nothing, times 50 /health requests meanwhile, and prints the server's RSS and
thread count. A one-off measurement on loopback, not a test; every
connection and the server are closed at the end.

    python3 scripts/slowloris.py 3000   (after `make build`)
"""
import socket, subprocess, os, time, sys, json, urllib.request
N=int(sys.argv[1])
env=dict(os.environ, PORT="3995", STATE_DIR="/tmp/cca-sl", LOG_LEVEL="warn", OPENAI_API_KEY="sk-x", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
p=subprocess.Popen(["target/x86_64-unknown-linux-gnu/release/claude-cli-api"],env=env,stderr=subprocess.DEVNULL)
time.sleep(0.3)
conns=[]
try:
    for i in range(N):
        s=socket.create_connection(("127.0.0.1",3995)); s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nX-A: "); conns.append(s)
    time.sleep(0.5)
    rss=int([l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].split()[1])
    thr=len(os.listdir(f"/proc/{p.pid}/task"))
    lat=[]
    for i in range(50):
        t=time.time(); urllib.request.urlopen("http://127.0.0.1:3995/health").read(); lat.append((time.time()-t)*1000)
    lat.sort()
    print(f"{N} idle slowloris connections: /health p50 {lat[25]:.2f} ms max {lat[-1]:.2f} ms; server RSS {rss/1024:.1f} MB, {thr} threads")
finally:
    for s in conns: s.close()
    p.terminate(); p.wait()
