"""Starts moto server with DynamoDB requests serialized, so transactions are isolated.

moto applies a TransactWriteItems item by item and, when one fails, restores deep copies of the
tables taken before it started. Under concurrent requests (the server is threaded) that restore
overwrites what other requests wrote meanwhile, and can keep a failed transaction's partial
writes: stock decremented by a transaction that was cancelled. DynamoDB never does either.
One lock around every DynamoDB item operation gives back DynamoDB's all-or-nothing isolation.

Usage: python infra/moto_server.py [moto.server arguments]
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


for _name in (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "transact_write_items",
):
    setattr(DynamoDBBackend, _name, _serialized(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
