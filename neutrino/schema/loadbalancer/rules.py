"""Rules that tie a load-balancer request's attributes together (Octavia's 400s).

Pure functions of the validated body (and, for updates, the object as it is): no
storage.  The service applies the rules that need other objects (ports in use, a
pool's monitor, listener/pool protocol pairs).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlparse

from neutrino import errors

HTTP_MONITORS = ("HTTP", "HTTPS")
#: header names an HTTP-family listener may insert
HEADERS = ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Forwarded-Host",
           "X-SSL-Client-Verify", "X-SSL-Client-Has-Cert", "X-SSL-Client-DN",
           "X-SSL-Client-CN", "X-SSL-Issuer", "X-SSL-Client-SHA1",
           "X-SSL-Client-Not-Before", "X-SSL-Client-Not-After")
TRANSPORT = {"UDP": "udp", "SCTP": "sctp"}
#: listener protocol -> the pool protocols it may send to
POOL_FOR_LISTENER = {
    "HTTP": ("HTTP", "PROXY", "PROXYV2"),
    "HTTPS": ("HTTPS", "PROXY", "PROXYV2", "TCP"),
    "TERMINATED_HTTPS": ("HTTP", "PROXY", "PROXYV2"),
    "TCP": ("HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"),
    "UDP": ("UDP",),
    "SCTP": ("SCTP",),
    "PROMETHEUS": (),
}


def bad(message: str) -> errors.BadRequest:
    return errors.BadRequest(f"Validation failure: {message}")


def transport(protocol: str) -> str:
    return TRANSPORT.get(protocol, "tcp")


def check_vip(body: dict) -> None:
    if not any(body.get(k) for k in ("vip_port_id", "vip_network_id", "vip_subnet_id")):
        raise bad("VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.")


def check_listener(item: dict) -> None:
    """``item``: the listener as it will be (create body, or current + changes)."""
    protocol = item["protocol"]
    headers = item.get("insert_headers") or {}
    if headers:
        if protocol not in ("HTTP", "TERMINATED_HTTPS"):
            raise bad(f"The following headers are not supported by the {protocol} "
                      f"protocol: {', '.join(sorted(headers))}.")
        unknown = sorted(set(headers) - set(HEADERS))
        if unknown:
            raise bad(f"{', '.join(unknown)} is not a valid option for insert_headers")
        wrong = sorted(k for k, v in headers.items() if v.lower() not in ("true", "false")
                       and not k.startswith("X-SSL-"))
        if wrong:
            raise bad(f"The value of {', '.join(wrong)} must be 'true' or 'false'.")
    if protocol == "TERMINATED_HTTPS" and not item.get("default_tls_container_ref"):
        raise bad("An SNI or default certificate container reference must be provided "
                  "for TERMINATED_HTTPS listeners.")
    if protocol != "TERMINATED_HTTPS":
        for key in ("default_tls_container_ref", "client_ca_tls_container_ref",
                    "client_crl_container_ref", "tls_ciphers", "tls_versions",
                    "alpn_protocols", "hsts_max_age"):
            if item.get(key):
                raise bad(f"{key} is only allowed on TERMINATED_HTTPS listeners.")
        if item.get("sni_container_refs"):
            raise bad("sni_container_refs is only allowed on TERMINATED_HTTPS listeners.")
        if item.get("client_authentication", "NONE") != "NONE":
            raise bad("client_authentication is only allowed on TERMINATED_HTTPS "
                      "listeners.")


def check_allowed_cidrs(cidrs: list[str] | None, vip_address: str | None) -> None:
    if not cidrs or not vip_address:
        return
    version = ipaddress.ip_address(vip_address).version
    for cidr in cidrs:
        if ipaddress.ip_network(cidr).version != version:
            raise bad(f"CIDR {cidr} IP version incompatible with VIP {vip_address} IP "
                      f"version.")


def check_persistence(protocol: str, persistence: dict | None) -> None:
    if not persistence:
        return
    kind = persistence["type"]
    if kind == "APP_COOKIE" and not persistence.get("cookie_name"):
        raise bad("session_persistence cookie_name is required for the APP_COOKIE type.")
    if kind != "APP_COOKIE" and persistence.get("cookie_name"):
        raise bad(f"session_persistence cookie_name is only allowed for the APP_COOKIE "
                  f"type, not {kind}.")
    if protocol in ("UDP", "SCTP"):
        if kind != "SOURCE_IP":
            raise bad(f"Session persistence of type {kind} is not supported for "
                      f"{protocol} protocol pools.")
    elif persistence.get("persistence_timeout") is not None \
            or persistence.get("persistence_granularity") is not None:
        raise bad("persistence_timeout and persistence_granularity are only for UDP and "
                  "SCTP pools.")
    cookie = persistence.get("cookie_name")
    if cookie and not all(c.isalnum() or c in "-_." for c in cookie):
        raise bad(f"'{cookie}' is not a valid cookie name.")


def check_pool_tls(item: dict) -> None:
    if not item.get("tls_enabled"):
        for key in ("tls_ciphers", "tls_versions", "alpn_protocols"):
            if item.get(key):
                raise bad(f"{key} is only allowed when tls_enabled is true.")


def monitor(item: dict, pool_protocol: str) -> dict:
    """The monitor as it will be, with the HTTP defaults filled (or refused)."""
    kind = item["type"]
    out = dict(item)
    if kind in HTTP_MONITORS:
        out.setdefault("http_method", "GET")
        out.setdefault("url_path", "/")
        out.setdefault("expected_codes", "200")
        for key in ("http_method", "url_path", "expected_codes"):
            if out.get(key) is None:
                out[key] = {"http_method": "GET", "url_path": "/",
                            "expected_codes": "200"}[key]
    else:
        for key in ("http_method", "url_path", "expected_codes", "http_version",
                    "domain_name"):
            if out.get(key) is not None:
                raise bad(f"{key} is not allowed for health monitors of type {kind}.")
            out[key] = None
    path = out.get("url_path")
    if path is not None and not path.startswith("/"):
        raise bad(f"URL path '{path}' must start with '/'.")
    codes = out.get("expected_codes")
    if codes is not None and not _codes_ok(codes):
        raise bad(f"'{codes}' is not a valid expected_codes: a code (200), a list "
                  f"(200,202) or a range (200-204) of codes 100-599.")
    if out.get("domain_name") and out.get("http_version") != 1.1:
        raise bad("domain_name requires http_version 1.1.")
    if kind == "UDP-CONNECT" and pool_protocol != "UDP":
        raise bad("The UDP-CONNECT health monitor type is only for UDP pools.")
    if kind == "SCTP" and pool_protocol not in ("SCTP", "UDP"):
        raise bad("The SCTP health monitor type is only for SCTP and UDP pools.")
    if pool_protocol == "UDP" and kind not in ("UDP-CONNECT", "TCP", "HTTP", "SCTP"):
        raise bad(f"The {kind} health monitor type is not supported for UDP pools.")
    if pool_protocol == "UDP" and out["delay"] < out["timeout"]:
        raise bad("The health monitor delay must be at least its timeout for UDP pools.")
    return out


def _codes_ok(codes: str) -> bool:
    def code(text: str) -> bool:
        return text.isdigit() and 100 <= int(text) <= 599
    if "-" in codes:
        lo, _, hi = codes.partition("-")
        return code(lo) and code(hi) and int(lo) <= int(hi)
    return all(code(c) for c in codes.split(","))


def l7policy(item: dict) -> dict:
    """The policy as it will be, its redirect fields matching its action."""
    action = item["action"]
    out = dict(item)
    wanted = {"REDIRECT_TO_POOL": "redirect_pool_id", "REDIRECT_TO_URL": "redirect_url",
              "REDIRECT_PREFIX": "redirect_prefix"}.get(action)
    if wanted and not out.get(wanted):
        raise bad(f"{wanted} is required for the {action} action.")
    for key in ("redirect_pool_id", "redirect_url", "redirect_prefix"):
        if key != wanted:
            out[key] = None
    if action in ("REDIRECT_TO_URL", "REDIRECT_PREFIX"):
        url = out[wanted]  # type: ignore[index]
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise bad(f"{url} is not a valid URL.")
        if out.get("redirect_http_code") is None:
            out["redirect_http_code"] = 302
    else:
        out["redirect_http_code"] = None
    return out


def l7rule(item: dict) -> dict:
    kind = item["type"]
    if kind in ("HEADER", "COOKIE", "SSL_DN_FIELD") and not item.get("key"):
        raise bad(f"A key is required for rules of type {kind}.")
    if kind not in ("HEADER", "COOKIE", "SSL_DN_FIELD") and item.get("key"):
        raise bad(f"A key is not allowed for rules of type {kind}.")
    if kind == "FILE_TYPE" and item["compare_type"] not in ("REGEX", "EQUAL_TO"):
        raise bad("FILE_TYPE rules compare by REGEX or EQUAL_TO only.")
    if kind in ("SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT") and \
            item["compare_type"] != "EQUAL_TO":
        raise bad(f"{kind} rules compare by EQUAL_TO only.")
    if kind == "SSL_CONN_HAS_CERT" and item["value"] != "True":
        raise bad("SSL_CONN_HAS_CERT rules take the value 'True' only.")
    value: Any = item["value"]
    if any(ch.isspace() for ch in value) or '"' in value:
        raise bad(f"'{value}' is not a valid value: no blanks or quotes.")
    return item
