"""Verifies delivered webhook events with the official SDK's `client.webhooks.unwrap`.

Reads {"secret": "whsec_...", "events": [{"body": "...", "headers": {...}}]} on stdin and prints, per event,
{"id", "type", "video_id"} as unwrap parsed it; a tampered copy of each must be refused. Exits 1 on any failure.
"""
import json
import sys

from openai import InvalidWebhookSignatureError, OpenAI

request = json.load(sys.stdin)
client = OpenAI(api_key="unused")
out = []
for event in request["events"]:
    parsed = client.webhooks.unwrap(event["body"], event["headers"], secret=request["secret"])
    out.append({"id": parsed.id, "type": parsed.type, "video_id": parsed.data.id})
    try:
        client.webhooks.unwrap(event["body"].replace("video_", "video_x"), event["headers"], secret=request["secret"])
    except InvalidWebhookSignatureError:
        pass
    else:
        sys.exit("a tampered body was accepted")
print(json.dumps(out))
