import pytest

from voting.settings import SettingsError, load_settings


def test_development_generates_a_secret_once_and_keeps_it(tmp_path):
    env = {"VOTING_DATA_DIR": str(tmp_path)}
    first = load_settings(env)
    second = load_settings(env)
    assert len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert first.database_url is None and first.redis_url is None


def test_production_needs_secret_and_urls(tmp_path):
    with pytest.raises(SettingsError) as info:
        load_settings({"VOTING_ENV": "production", "VOTING_DATA_DIR": str(tmp_path)})
    message = str(info.value)
    for name in ("VOTING_DATABASE_URL", "VOTING_REDIS_URL", "VOTING_SECRET_KEY"):
        assert name in message
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_a_short_secret():
    env = {
        "VOTING_ENV": "production",
        "VOTING_DATABASE_URL": "postgresql://db/x",
        "VOTING_REDIS_URL": "redis://r",
        "VOTING_SECRET_KEY": "short",
    }
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings(env)


def test_production_with_everything_set():
    env = {
        "VOTING_ENV": "production",
        "VOTING_DATABASE_URL": "postgresql://db/x",
        "VOTING_REDIS_URL": "redis://r",
        "VOTING_SECRET_KEY": "s" * 40,
        "VOTING_PORT": "9000",
    }
    settings = load_settings(env)
    assert settings.production and settings.port == 9000
    assert settings.secret_key == "s" * 40


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VOTING_PORT", "eighty"),
        ("VOTING_BACKGROUND_TASKS", "maybe"),
        ("VOTING_ENV", "staging"),
        ("VOTING_SERVER", "gunicorn"),
    ],
)
def test_malformed_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({"VOTING_DATA_DIR": str(tmp_path), name: value})


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.1/8",  # host bits set: uvicorn would keep it as a literal that never matches
        "10.0.0.0/33",
        "balancer.internal",
        "0.0.0.0/0",  # every address trusted: the client's own first entry would be believed
        "::/0",
        "127.0.0.1,*",
        ",",
    ],
)
def test_forwarded_allow_ips_takes_only_addresses_and_networks(tmp_path, value):
    with pytest.raises(SettingsError, match=r"VOTING_FORWARDED_ALLOW_IPS.*balancers"):
        load_settings({"VOTING_DATA_DIR": str(tmp_path), "VOTING_FORWARDED_ALLOW_IPS": value})


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("*", "*"),
        (" 10.0.0.0/8 , 192.0.2.7,2001:db8::/32 ", "10.0.0.0/8,192.0.2.7,2001:db8::/32"),
        ("", "127.0.0.1"),
    ],
)
def test_forwarded_allow_ips_networks_and_star(tmp_path, value, kept):
    env = {"VOTING_DATA_DIR": str(tmp_path), "VOTING_FORWARDED_ALLOW_IPS": value}
    assert load_settings(env).forwarded_allow_ips == kept


@pytest.mark.parametrize(
    ("value", "server"),
    [(None, "uvicorn"), ("", "uvicorn"), ("uvicorn", "uvicorn"), (" Granian ", "granian")],
)
def test_the_asgi_server_is_uvicorn_unless_told(tmp_path, value, server):
    env = {"VOTING_DATA_DIR": str(tmp_path)}
    if value is not None:
        env["VOTING_SERVER"] = value
    assert load_settings(env).server == server
