"""Runtime wiring: the typed container, the one shipper, the Kafka client factory, the
broker launcher."""
