"""A subscription allowance for fake_anthropic.py to count down: the
`anthropic-ratelimit-unified-*` headers the Anthropic API sends a
subscription login (read by the `claude` CLI, which reports them as
`rate_limit_event` lines), and the 429 it answers once the allowance is
spent.

Each messages request spends `per_request` of the 5-hour window. Its status
is `allowed`, `allowed_warning` from `warn_at` on, and `rejected` once it is
spent: the request is then refused (429 `rate_limit_error`, `retry-after`)
until the window resets, `window_secs` after it began, when it starts again
from nothing. The 7-day window stays at `seven_day` utilization.
"""

import threading
import time


class Allowance:
    def __init__(self, per_request=0.25, warn_at=0.75, window_secs=3600.0, seven_day=0.3):
        self.per_request = per_request
        self.warn_at = warn_at
        self.window_secs = window_secs
        self.seven_day = seven_day
        self.used = 0.0
        self.refused = 0
        self.reset_at = time.time() + window_secs
        self._lock = threading.Lock()

    def spend(self):
        """(refused, headers) for one messages request."""
        with self._lock:
            now = time.time()
            if now >= self.reset_at:
                self.used = 0.0
                self.reset_at = now + self.window_secs
            refused = self.used >= 1.0 - 1e-9
            if refused:
                self.refused += 1
            else:
                self.used = min(1.0, self.used + self.per_request)
            return refused, self._headers(now, refused)

    def _headers(self, now, refused):
        five = 1.0 if refused else self.used
        if refused:
            status = "rejected"
        elif five >= self.warn_at:
            status = "allowed_warning"
        else:
            status = "allowed"
        reset = int(self.reset_at + 0.999)
        week_reset = int(now) + 5 * 24 * 3600
        prefix = "anthropic-ratelimit-unified-"
        headers = {
            prefix + "status": status,
            prefix + "reset": str(reset),
            prefix + "representative-claim": "five_hour",
            prefix + "5h-status": status,
            prefix + "5h-utilization": f"{five:.2f}",
            prefix + "5h-reset": str(reset),
            prefix + "7d-status": "allowed",
            prefix + "7d-utilization": f"{self.seven_day:.2f}",
            prefix + "7d-reset": str(week_reset),
            prefix + "overage-status": "rejected",
            prefix + "overage-disabled-reason": "org_level_disabled",
        }
        if status == "allowed_warning":
            headers[prefix + "5h-surpassed-threshold"] = f"{self.warn_at:.2f}"
        if refused:
            headers["retry-after"] = str(max(1, int(self.reset_at - now + 0.999)))
        return headers
