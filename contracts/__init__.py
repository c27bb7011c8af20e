"""The wire and log contracts of the NRM referral bus.

Everything here is free of I/O so that an outside auditor can use it alone: the
vocabulary, the event catalogue, the envelope, need-to-know entitlements, sealing,
the verifiable log's proofs, and the error body every HTTP API answers (`problems`).
"""
