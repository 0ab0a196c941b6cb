"""Pipelines across several hosts, over Zenoh (issue 14).

A channel whose reader runs on another host is carried by a pair of bridges
(:mod:`.bridge`): an egress that reads the channel on the writer's host and
puts each message on Zenoh, and an ingress that publishes them into the same
channel on the reader's host. Edges within one host stay iceoryx2 channels.
This package needs the ``hosts`` extra (``eclipse-zenoh``); the rest of the
SDK never imports it.
"""
