"""What every Kafka client of the system is given: the bootstrap servers and, when configured, TLS and SASL.

One place, so the API, the workers (Faust and the plain clients beside it), the CLI and the bench all connect the
same way. `CART_KAFKA_SECURITY_PROTOCOL` is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; with SASL the username
and password are `CART_KAFKA_USERNAME` and `CART_KAFKA_PASSWORD` (or the local broker's generated password), the
mechanism `CART_KAFKA_SASL_MECHANISM` (SCRAM-SHA-256 by default); with TLS the broker's certificate is checked
against `CART_KAFKA_CA_FILE` (or the local broker's own certificate), host name included.
"""

from __future__ import annotations

import ssl
from typing import Any

from app.settings import Settings


def tls_context(settings: Settings) -> ssl.SSLContext:
    from aiokafka.helpers import create_ssl_context

    ca = settings.kafka_ca
    if ca is None:
        raise ValueError("TLS to Kafka needs the broker's CA: set CART_KAFKA_CA_FILE")
    context: ssl.SSLContext = create_ssl_context(cafile=str(ca))
    return context


def kafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producer, consumer, admin and client."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap, "security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = tls_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        secret = settings.kafka_secret
        if secret is None:
            raise ValueError(f"{protocol} to Kafka needs a password: set CART_KAFKA_PASSWORD")
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_username,
            sasl_plain_password=secret,
        )
    return options


def faust_credentials(settings: Settings) -> Any:
    """The same for Faust (`broker_credentials`); None for PLAINTEXT."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(tls_context(settings))
    options = kafka_options(settings)
    return faust.SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=options.get("ssl_context"),
        mechanism=settings.kafka_sasl_mechanism,
    )
