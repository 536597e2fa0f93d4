"""TLS probe: is the certificate trusted, for this host name, and for how much longer.

The detail names the problem in words: "certificate expired 3 days ago",
"certificate is for wrong.example.test, not localhost".
cryptography (to read the certificate) is imported only when a tls probe runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from pydantic import Field

from greenloop.probes.base import (
    CaFile,
    Observation,
    ProbeKind,
    ProbeOptions,
    describe_error,
    ms,
    tls_context,
)

if TYPE_CHECKING:
    from cryptography import x509


class TlsOptions(ProbeOptions):
    host: str
    port: int = Field(443, ge=1, le=65535)
    server_name: str | None = None  # SNI and the name to match; default: host
    ca_file: CaFile = None  # PEM bundle to trust instead of the system store


class TlsProbe(ProbeKind[TlsOptions]):
    name = "tls"
    Options = TlsOptions
    variables = ("connected", "chain_valid", "hostname_matches", "cert_days_left", "latency_ms")
    default_conditions = ("chain_valid", "hostname_matches", "cert_days_left > 0")
    client_modules = ("cryptography.x509",)

    def target(self, options: TlsOptions) -> str:
        return f"tls://{options.host}:{options.port}"

    async def check(self, options: TlsOptions, timeout_s: float) -> Observation:
        from cryptography import x509

        name = options.server_name or options.host
        verifying = _verifying_context(options.ca_file)
        started = time.perf_counter()
        problem = ""
        try:
            der = await _peer_certificate(options.host, options.port, verifying, name)
            chain_valid = True
        except ssl.SSLCertVerificationError as exc:
            chain_valid = False
            problem = exc.verify_message or str(exc)
            try:
                der = await _peer_certificate(
                    options.host, options.port, tls_context(verify=False), name
                )
            except (OSError, ssl.SSLError) as inner:
                return Observation({"connected": False}, describe_error(inner))
        except (OSError, ssl.SSLError) as exc:
            return Observation({"connected": False}, describe_error(exc))
        latency = ms(time.perf_counter() - started)
        cert = x509.load_der_x509_certificate(der)
        expires = cert.not_valid_after_utc
        remaining_s = (expires - datetime.now(UTC)).total_seconds()
        days_left = int(remaining_s / 86400)  # whole days, toward zero: -3 is "3 days ago"
        names = certificate_names(cert)
        matches = hostname_matches(names, name)
        values = {
            "connected": True,
            "chain_valid": chain_valid,
            "hostname_matches": matches,
            "cert_days_left": days_left,
            "latency_ms": latency,
        }
        words = []
        if remaining_s <= 0:
            ago = f"{_days(-days_left)} ago" if days_left else "less than a day ago"
            words.append(f"certificate expired {ago}")
        if not matches:
            words.append(f"certificate is for {', '.join(names) or 'no name'}, not {name}")
        if not chain_valid and remaining_s > 0:
            words.append(f"certificate not trusted: {problem}")
        if not words:
            words.append(
                f"certificate valid for {_days(days_left)} more (until {expires:%Y-%m-%d})"
            )
        return Observation(values, "; ".join(words))


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


@lru_cache(maxsize=16)
def _verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """Checks the chain but not the host name, which is judged separately so both
    problems can be named; built once per CA bundle (loading it costs 20-30 ms)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False
    return context


async def _peer_certificate(host: str, port: int, context: ssl.SSLContext, name: str) -> bytes:
    _reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=name)
    try:
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj else None
    finally:
        writer.close()
        # An unclean TLS shutdown does not change what we saw.
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    if not der:
        raise ssl.SSLError("server sent no certificate")
    return der


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses a certificate is for (SAN, else the common name)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(a.value) for a in common]
    names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    return names + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def hostname_matches(names: list[str], host: str) -> bool:
    """RFC 6125 matching: exact, or one leftmost `*` label; IP addresses match exactly."""
    try:
        wanted_ip = ipaddress.ip_address(host)
    except ValueError:
        wanted_ip = None
    host = host.lower().rstrip(".")
    for name in names:
        if wanted_ip is not None:
            try:
                if ipaddress.ip_address(name) == wanted_ip:
                    return True
            except ValueError:
                continue
            continue
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False
