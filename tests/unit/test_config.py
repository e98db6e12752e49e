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


def test_load_balancer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.load().lb_providers.keys() == {"noop"}
    assert all(v == -1 for v in config.load().lb_quotas.values())
    monkeypatch.setenv("NEUTRINO_LB_PROVIDERS", "amphora=The Octavia Amphora driver.;x=y")
    monkeypatch.setenv("NEUTRINO_LB_QUOTAS", "loadbalancer=5")
    settings = config.load()
    assert settings.lb_providers == {"amphora": "The Octavia Amphora driver.", "x": "y"}
    assert settings.lb_quotas["loadbalancer"] == 5 and settings.lb_quotas["member"] == -1


def test_load_balancer_settings_that_refuse_every_create_stop_the_start() -> None:
    from neutrino.services import Services

    with pytest.raises(SystemExit, match="lb_default_provider"):
        Services(config.load(lb_default_provider="amphora"))
    with pytest.raises(SystemExit, match="lb_network"):
        Services(config.load(lb_network="ovn"))
    Services(config.load(lb_default_provider="a", lb_providers={"a": "b"}))
