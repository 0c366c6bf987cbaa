"""Starts moto server with DynamoDB requests serialized, so transactions are isolated, SQS
sends whose cost does not grow with the queue, and long polls of FIFO queues that do not spin
(see the SQS patches at the end).

moto applies a TransactWriteItems item by item and, when one fails, restores deep copies of the
tables taken before it started. Under concurrent requests (the server is threaded) that restore
overwrites what other requests wrote meanwhile, and can keep a failed transaction's partial
writes: stock decremented by a transaction that was cancelled. DynamoDB never does either.
One lock around every DynamoDB item operation gives back DynamoDB's all-or-nothing isolation.

Its rollback also deep-copies every table a transaction touches, before each transaction: the
idempotency table grows with every event, so each transaction cost more than the last and the
server's memory grew by gigabytes over a test run. Here a transaction saves only the items it
touches and puts them back when it fails, which is what the rollback needs.

Usage: python infra/moto_server.py [moto.server arguments]
"""

import copy
import functools
import sys
import threading
import time

import moto.dynamodb.models as dynamodb_models
import moto.sqs.models as sqs_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.server import main

_LOCK = threading.RLock()


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend: a table is "copied" as
    itself (its rollback then restores nothing), anything else as before."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    copy = staticmethod(copy.copy)


dynamodb_models.copy = _TablesNotCopied


def _key_of(backend, op_type, op):
    table = backend.tables.get(op.get("TableName"))
    if table is None:
        return None
    if op_type != "Put":
        return op.get("Key")
    item = op.get("Item", {})
    key = {table.hash_key_attr: item.get(table.hash_key_attr)}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item.get(table.range_key_attr)
    return key


def _transact_write_items(original):
    @functools.wraps(original)
    def wrapper(self, transact_items):
        saved = []
        for entry in transact_items:
            try:
                op_type, op = next(iter(entry.items()))
                key = _key_of(self, op_type, op)
                if key is not None:
                    before = self.get_item(op["TableName"], key)
                    saved.append((op["TableName"], key, copy.deepcopy(before)))
            except Exception:  # a malformed entry: moto's own validation answers it
                continue
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, before in reversed(saved):
                if before is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before.to_json()["Attributes"])
            raise

    return wrapper


DynamoDBBackend.transact_write_items = _transact_write_items(DynamoDBBackend.transact_write_items)


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


# SQS: a send reads one attribute of its queue (ContentBasedDeduplication) through moto's
# `Queue.attributes`, which computes every attribute, the message counts among them: three passes
# over the queue's messages, asking each whether it is visible or delayed, on every send. A
# publish into queues of a few hundred messages took 120 ms, and more the fuller the queues,
# where SQS's cost does not grow with the queue. Here, while a send runs, a queue's attributes are
# the one a send reads; and the current time comes from time.time() (the same instant, without
# building datetimes) for the passes that remain (GetQueueAttributes, receives).
_unix_time_millis = sqs_models.unix_time_millis


def _millis(dt=None):
    return time.time() * 1000.0 if dt is None else _unix_time_millis(dt)


sqs_models.unix_time_millis = _millis

_SENDING = threading.local()
_all_attributes = sqs_models.Queue.attributes.fget


def _attributes(queue):
    if not getattr(_SENDING, "active", False):
        return _all_attributes(queue)
    if not queue.fifo_queue:
        return {}
    return {"ContentBasedDeduplication": str(queue.content_based_deduplication).lower()}


def _sending(send):
    @functools.wraps(send)
    def wrapper(*args, **kwargs):
        _SENDING.active = True
        try:
            return send(*args, **kwargs)
        finally:
            _SENDING.active = False

    return wrapper


sqs_models.Queue.attributes = property(_attributes)
sqs_models.SQSBackend.send_message = _sending(sqs_models.SQSBackend.send_message)

# SQS FIFO: moto's long poll takes the message groups in flight once, when it starts, and waits
# for "any visible message". When every visible message belongs to a group in flight, that wait
# returns at once and the poll spins (a core at 100 % for the poll's seconds), and it never sees
# a group freed meanwhile. Here a long poll of a FIFO queue is a short poll repeated every 50 ms
# until it brings messages or its time is up: each look sees the groups as they are now.
_receive_message = sqs_models.SQSBackend.receive_message


@functools.wraps(_receive_message)
def _receive_fifo_without_spinning(self, queue_name, count, wait_seconds_timeout, *args, **kwargs):
    if not wait_seconds_timeout or not self.get_queue(queue_name).fifo_queue:
        return _receive_message(self, queue_name, count, wait_seconds_timeout, *args, **kwargs)
    polling_end = time.time() + wait_seconds_timeout
    while True:
        messages = _receive_message(self, queue_name, count, 0, *args, **kwargs)
        if messages or time.time() >= polling_end:
            return messages
        time.sleep(0.05)


sqs_models.SQSBackend.receive_message = _receive_fifo_without_spinning

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
