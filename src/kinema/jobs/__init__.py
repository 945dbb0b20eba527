"""Jobs: the durable store, the dispatcher, the worker process and webhooks."""
