"""Ready-made provider templates, chosen by `template = "smsportal"` in a carrier table:
each is the table a user would otherwise write, from the provider's own API
documentation (Clickatell HTTP, BulkSMS EAPI, SMSPortal REST). Keys the
table sets override the template's; docs/http-upstream.md lists every template."""

from __future__ import annotations

from typing import Any

# SMSPortal REST: a JWT from /v1/Authentication (Basic
# clientId:secret), then up to 100 messages per POST /v1/bulkmessages. The answer holds
# one EventId for the request and an ErrorReport; a delivery report names the EventId
# and the number, so a message's carrier id is "<EventId>:<number>" (and one request
# never carries the same number twice). Webhooks carry no signature: the callback URL
# holds the secret.
SMSPORTAL: dict[str, Any] = {
    "url": "https://rest.smsportal.com/v1/bulkmessages",
    "method": "POST",
    "auth": "token",
    "token_url": "https://rest.smsportal.com/v1/Authentication",
    "token_path": "token",
    "token_minutes_path": "expiresInMinutes",
    "number_format": "digits",  # E.164 digits, as "27830000000" in their examples
    "body": "json",
    "json": {"Messages": "{messages}"},
    "message": {"Content": "{text}", "Destination": "{to}"},
    "batch_size": 100,
    "answer": "json",
    "id_path": "EventId",
    "faults_path": "ErrorReport.Faults",
    "id_format": "{id}:{to}",
    "callback_auth": "path",
    # Webhook V2 (POST JSON) first, then V1 (GET query).
    "dlr": {
        "id": ["{EventId}:{Msisdn}", "{EventID}:{Phonenumber}"],
        "status": ["Status"],
        "statuses": {
            "DELIVRD": "delivered",
            "UNDELIV": "undelivered",
            "EXPIRED": "expired",
            "BLIST": "rejected",  # blocked by the owner or WASPA
            "CANCELLED": "rejected",
            "NOROUTE": "rejected",
            "SUBMITD": "submitted",
            "STAGED": "submitted",  # scheduled
        },
    },
    # Webhook V1 (GET); V2's reply fields are incomplete in our reference.
    "mo": {"sender": ["Phonenumber"], "text": ["IncomingData"], "id": ["IncomingID"]},
}

# BulkSMS EAPI, South African host. One message per send_sms
# request: its answer `status_code|status_description|batch_id` is exact per message,
# where send_batch answers for a whole CSV batch (one bad number would fail them all).
# Any non-200 HTTP answer is transient; status 40 (and 26, 28) are retried.
BULKSMS: dict[str, Any] = {
    "url": "https://bulksms.2way.co.za/eapi/submission/send_sms/2/2.0",
    "method": "POST",
    "auth": "key",
    "key_in": "form",
    "keys": {"username": "", "password": ""},
    "number_format": "digits",
    "body": "form",
    "fields": {"msisdn": "{to}", "message": "{text}", "sender": "{from}",
               "want_report": "1"},
    "form_charset": "iso-8859-1",
    "ucs2_fields": {"dca": "16bit"},
    "ucs2_text": "hex",
    "batch_size": 1,
    "answer": "text",
    "answer_regex": r"^\s*(?P<code>\d+)\|(?P<error>[^|\r\n]*)(?:\|(?P<id>\d+))?",
    "ok_codes": ["0", "1"],  # 0 IN_PROGRESS, 1 scheduled
    "retry_codes": ["40", "26", "28"],
    "retry_statuses": list(range(400, 500)),
    "callback_auth": "path",
    # The status push is a GET with msisdn, batch_id, status, completed_time.
    "dlr": {
        "id": ["{batch_id}"],
        "status": ["status"],
        "statuses": {
            "0": "submitted", "10": "submitted", "11": "delivered", "12": "submitted",
            "22": "rejected", "23": "rejected", "24": "rejected", "25": "rejected",
            "26": "rejected", "27": "rejected", "28": "rejected", "29": "rejected",
            "31": "rejected", "32": "rejected", "33": "rejected",
            "40": "submitted",
            "50": "undelivered", "51": "undelivered", "52": "undelivered",
            "53": "expired",
            "60": "submitted", "61": "submitted", "62": "submitted", "70": "submitted",
        },
    },
}

# Clickatell's archived HTTP API: user, password and api_id on
# every call; `ID: <apimsgid>` or `ERR: <code>, <text>`; the status callback may carry
# HTTP Basic credentials, which is how the hub checks it.
CLICKATELL: dict[str, Any] = {
    "url": "https://api.clickatell.com/http/sendmsg",
    "method": "POST",
    "auth": "key",
    "key_in": "form",
    "keys": {"api_id": "", "user": "", "password": ""},
    "number_format": "digits",
    "body": "form",
    "fields": {"to": "{to}", "text": "{text}", "from": "{from}", "climsgid": "{id}"},
    "ucs2_fields": {"unicode": "1"},
    "ucs2_text": "hex",
    "batch_size": 1,
    "answer": "text",
    "answer_regex": r"^\s*(?:ID:\s*(?P<id>\S+)|ERR:\s*(?P<code>\d+),\s*(?P<error>[^\r\n]*))",
    "retry_codes": ["130"],  # maximum MT limit exceeded until a time
    "callback_auth": "basic",
    "dlr": {
        "id": ["{apiMsgId}"],
        "status": ["status"],
        "statuses": {
            "001": "submitted", "002": "submitted", "003": "submitted",
            "004": "delivered",
            "005": "rejected",  # error with message (content)
            "006": "rejected",  # cancelled
            "007": "undelivered",
            "008": "submitted", "011": "submitted",
            "009": "rejected",  # routing error
            "010": "expired",
            "012": "rejected", "014": "rejected",  # out of credit, MT limit
        },
    },
    "mo": {"sender": ["from"], "recipient": ["to"], "text": ["text"], "id": ["moMsgId"]},
}

TEMPLATES: dict[str, dict[str, Any]] = {
    "smsportal": SMSPORTAL,
    "bulksms": BULKSMS,
    "clickatell": CLICKATELL,
}
