"""The inventory consumer written the way a Python team would with Powertools for AWS Lambda:
the batch utility (partial batch response) and the idempotency utility (DynamoDB persistence),
against the same tables, layout and events as the Rust inventory function.

Reserves the stock of every line of an order in one transaction (never below zero) and records
the decision; an order the stock cannot cover is recorded as rejected and acknowledged."""

import json
import os

import boto3
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

TABLE = os.environ["SERVICE_TABLE"]
dynamodb = boto3.client("dynamodb")
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
config = IdempotencyConfig(
    event_key_jmespath="orderId",
    payload_validation_jmespath="items",
    expires_after_seconds=3600,
)
processor = BatchProcessor(event_type=EventType.SQS)


@idempotent_function(data_keyword_argument="order", config=config, persistence_store=persistence)
def reserve(order: dict) -> dict:
    quantities: dict[str, int] = {}
    for line in order["items"]:
        quantities[line["sku"]] = quantities.get(line["sku"], 0) + int(line["quantity"])
    decision = {"Put": {
        "TableName": TABLE,
        "Item": {"pk": {"S": f"ORDER#{order['orderId']}"}, "decision": {"S": "RESERVED"}},
        "ConditionExpression": "attribute_not_exists(pk)",
    }}
    updates = [{"Update": {
        "TableName": TABLE,
        "Key": {"pk": {"S": f"SKU#{sku}"}},
        "UpdateExpression": "SET available = available - :q",
        "ConditionExpression": "attribute_exists(pk) AND available >= :q",
        "ExpressionAttributeValues": {":q": {"N": str(quantity)}},
    }} for sku, quantity in sorted(quantities.items())]
    try:
        dynamodb.transact_write_items(TransactItems=updates + [decision])
        return {"decision": "RESERVED"}
    except dynamodb.exceptions.TransactionCanceledException:
        decision["Put"]["Item"]["decision"] = {"S": "REJECTED"}
        dynamodb.transact_write_items(TransactItems=[decision])
        return {"decision": "REJECTED"}


def record_handler(record: SQSRecord) -> dict:
    event = json.loads(record.body)
    if event.get("type") != "OrderPlaced" or event.get("eventversion") != "1":
        raise ValueError(f"not an OrderPlaced v1 event: {event.get('type')}")
    return reserve(order=event["data"])


def handler(event: dict, context) -> dict:
    config.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
