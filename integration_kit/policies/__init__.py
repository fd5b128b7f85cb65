"""The pure, sans-I/O resilience policies: each is given the time and told outcomes, and answers with decisions.

``outcome`` classifies one attempt; ``retry`` holds backoff, jitter and Retry-After; ``budget`` the retry budget;
``breaker`` the circuit breaker; ``limits`` the bulkhead and rate limiter; ``config`` their frozen, validated
settings; ``tables`` checks a user's tables against such settings, every error naming the field as written.
Nothing here sleeps, reads the wall clock or touches a socket.
"""

__all__: list[str] = []
