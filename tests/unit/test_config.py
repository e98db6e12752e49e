"""Settings: defaults, TOML file, environment, in that order of precedence."""

from pathlib import Path

import pytest

from neutrino import config


def test_defaults_run_one_box() -> None:
    s = config.load()
    assert (s.host, s.port, s.auth) == ("127.0.0.1", 9696, "embedded")
    assert s.db_url.startswith("sqlite:///")
    # upstream's defaults
    assert s.quotas == {"network": 100, "subnet": 100, "port": 500, "router": 10,
                        "floatingip": 50, "security_group": 10, "security_group_rule": 100,
                        "rbac_policy": 10, "firewall_group": 10, "firewall_policy": 10,
                        "firewall_rule": 100}


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "n.toml"
    f.write_text('port = 9000\nvni_range = [100, 200]\n[quotas]\nport = 7\n'
                 '[vlan_ranges]\nphysnet2 = [10, 20]\n')
    monkeypatch.setenv("NEUTRINO_PORT", "9100")
    monkeypatch.setenv("NEUTRINO_DATABASE_URL", "postgresql://u@h/db")
    s = config.load(f)
    assert s.port == 9100
    assert s.vni_range == (100, 200)
    assert s.quotas["port"] == 7 and s.quotas["network"] == 100
    assert s.vlan_ranges == {"physnet2": (10, 20)}
    assert s.db_url == "postgresql://u@h/db"


def test_unknown_settings_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "n.toml"
    f.write_text("prot = 1\n")
    with pytest.raises(ValueError, match="prot"):
        config.load(f)


def test_list_caps_have_upstreams_names_and_defaults(tmp_path: Path) -> None:
    s = config.load()
    assert (s.max_allowed_address_pair, s.max_fixed_ips_per_port, s.max_dns_nameservers,
            s.max_subnet_host_routes, s.max_routes) == (10, 5, 5, 20, 30)
    f = tmp_path / "n.toml"
    f.write_text("max_host_routes = 7\nmax_allowed_address_pair = 3\n")  # the old spelling
    s = config.load(f)
    assert (s.max_subnet_host_routes, s.max_allowed_address_pair) == (7, 3)
