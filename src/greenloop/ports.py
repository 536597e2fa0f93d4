"""The port each URL scheme greenloop knows defaults to (init proposes probes, verify matches
targets).
"""

DEFAULT_PORT = {
    "http": 80,
    "https": 443,
    "ws": 80,
    "wss": 443,
    "postgres": 5432,
    "postgresql": 5432,
    "redis": 6379,
    "rediss": 6379,
    "mysql": 3306,
    "mongodb": 27017,
    "amqp": 5672,
    "amqps": 5671,
}
