"""Live events for the dashboard and integrations: the bus's domain events as JSON, per subscriber.

``payloads`` names each event type and renders it as JSON; ``subscription`` holds one client's bounded
queue; ``registry`` keeps an app's subscriptions so a stopping server can end them.
"""
