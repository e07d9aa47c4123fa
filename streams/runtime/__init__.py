"""Runtime wiring: the typed container, the one shipper, the Kafka client factory.

Also the launchers of local parts (broker).
"""
