-- wrk: every request is a chat-completions POST. BENCH_BODY picks the body
-- (stream or not); bench.sh sets it in wrk's environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")
    or '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}'
