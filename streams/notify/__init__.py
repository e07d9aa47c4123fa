"""Notifications: deliver ``crm.alerts`` to people through Alertmanager and signed webhooks.

Pure parts (payload mapping, label bounding, signing, retry policy, the open-episode view)
are separate modules from the transport (HTTP clients) and the Kafka loop (``service``).
"""
