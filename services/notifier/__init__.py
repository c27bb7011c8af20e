"""The notifier: tells agency systems what arrived, chases deadlines (R8).

Pure parts: `notifications` (bodies by allow-list, retry policy), `deadlines` (what
each log item opens or closes), `callers` (who may call the API); the webhook signature
format is a contract (`contracts.webhook_signature`), shared with the receivers that
verify it. I/O: `store` (SQLite), `runtime` (loops, HTTP clients), `api` (routes at
module level; the runtime serves them).
"""

from notifier.notifications import Notification, RetryPolicy
from notifier.runtime import NotifierRuntime, NotifierSettings, ServedAgency
from notifier.subscriptions import StaticSubscription

__all__ = [
    "Notification",
    "NotifierRuntime",
    "NotifierSettings",
    "RetryPolicy",
    "ServedAgency",
    "StaticSubscription",
]
