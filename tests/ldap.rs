//! Logins against a real OpenLDAP `slapd`, started by the suite on free loopback
//! ports (tests/common/slapd.rs): search-then-bind and direct bind, groups by a
//! filter and by `memberOf`, allowed and administrators' groups, names shaped like
//! filter injection, StartTLS and `ldaps://`, the directory stopped and started
//! again under a running gateway, and the htpasswd file beside the directory.

mod common;

use std::time::Duration;

use common::slapd::Slapd;
use common::*;
use http::Method;
use livy_gateway::config::LdapConfig;

const BATCHES: &str = "/gateway/default/livy/v1/batches";

/// `[auth.ldap]` for `slapd`: search-then-bind with the service account, groups by
/// filter.
fn directory(slapd: &Slapd) -> LdapConfig {
    slapd.directory()
}

/// A gateway whose only users are the directory's.
fn directory_only(ldap: LdapConfig) -> Options {
    Options::backend(fast_sim()).with(move |c| {
        c.auth.htpasswd = None;
        c.auth.ldap = Some(ldap);
    })
}

async fn login(client: &Client, proto: Proto, user: &str, password: &str) -> Answer {
    let auth = basic(user, password);
    client
        .send(
            proto,
            Method::GET,
            BATCHES,
            &[("authorization", auth.as_bytes())],
            "",
        )
        .await
}

#[tokio::test]
async fn directory_users_log_in_and_nobody_else_does() {
    let slapd = Slapd::start().await;
    let gw = TestGateway::start(directory_only(directory(&slapd))).await;
    let c = gw.client();
    for proto in [Proto::H1, Proto::H2] {
        let r = login(&c, proto, "alice", "alice-pw").await;
        assert_eq!(r.status, 200, "{proto:?}");
        assert!(r.session_cookie().is_some());
        for (user, password) in [
            ("alice", "wrong"),
            ("nobody", "alice-pw"),
            ("*", "alice-pw"),
            ("alice)(uid=*", "alice-pw"),
            ("al*", "alice-pw"),
            ("uid=alice,ou=people,dc=example,dc=org", "alice-pw"),
        ] {
            let r = login(&c, proto, user, password).await;
            assert_eq!(r.status, 401, "{proto:?} {user:?}");
            assert_eq!(r.json()["error"], "unauthorized");
        }
    }
    // An empty password never reaches the directory (an anonymous bind would
    // succeed there).
    let binds = |m: &std::collections::HashMap<String, f64>| {
        m.iter()
            .filter(|(k, _)| k.contains("directory_operations_total{op=\"bind_user\""))
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    let before = binds(&scrape(&gw).await);
    let r = login(&c, Proto::H1, "alice", "").await;
    assert_eq!(r.status, 401);
    assert_eq!(binds(&scrape(&gw).await), before);
    let m = scrape(&gw).await;
    assert!(
        metric(
            &m,
            r#"livy_gateway_directory_operations_total{op="bind_user",outcome="ok"}"#
        ) >= 1.0
    );
    assert!(m.contains_key(r#"livy_gateway_directory_duration_seconds_count{op="search_user"}"#));
}

#[tokio::test]
async fn groups_decide_who_may_enter_and_who_administers() {
    let slapd = Slapd::start().await;
    let gw = TestGateway::start(directory_only(directory(&slapd)).with(|c| {
        c.auth.allowed_groups = vec!["livy-users".into()];
        c.auth.admin_groups = vec!["LIVY-ADMINS".into()];
    }))
    .await;
    let c = gw.client();
    for proto in [Proto::H1, Proto::H2] {
        let r = login(&c, proto, "dave", "dave-pw").await;
        assert_eq!(r.status, 403, "{proto:?}");
        assert_eq!(r.json()["error"], "forbidden");
        assert_eq!(login(&c, proto, "alice", "alice-pw").await.status, 200);
    }
    // carol administers through her group: she may act for bob; alice may not.
    let create = |user: &'static str, password: &'static str| {
        let c = c.clone();
        async move {
            let auth = basic(user, password);
            c.send(
                Proto::H2,
                Method::POST,
                BATCHES,
                &[
                    ("authorization", auth.as_bytes()),
                    ("content-type", b"application/json"),
                ],
                r#"{"file":"a.jar","proxyUser":"bob"}"#,
            )
            .await
        }
    };
    assert_eq!(create("carol", "carol-pw").await.status, 201);
    assert_eq!(create("alice", "alice-pw").await.status, 403);
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = gw.audit_lines();
        if lines.iter().any(|l| l["user"] == "carol") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let carol = lines.iter().find(|l| l["user"] == "carol").unwrap();
    assert_eq!(carol["effective_user"], "bob");
    assert_eq!(
        carol["grants"],
        "allowed: group livy-users; admin: group livy-admins"
    );
    let dave = lines.iter().find(|l| l["user"] == "dave").unwrap();
    assert_eq!(dave["outcome"], "denied");
}

#[tokio::test]
async fn direct_bind_with_groups_from_member_of() {
    let slapd = Slapd::start().await;
    // No service account: the user's own bind reads their memberOf.
    let ldap = LdapConfig {
        urls: vec![slapd.url()],
        user_dn_template: "uid={user},ou=people,dc=example,dc=org".into(),
        use_member_of: true,
        ..LdapConfig::default()
    };
    let gw = TestGateway::start(directory_only(ldap).with(|c| {
        c.auth.allowed_groups = vec!["livy-users".into()];
        c.auth.admin_groups = vec!["livy-admins".into()];
    }))
    .await;
    let c = gw.client();
    assert_eq!(login(&c, Proto::H1, "bob", "bob-pw").await.status, 200);
    assert_eq!(login(&c, Proto::H1, "bob", "wrong").await.status, 401);
    assert_eq!(login(&c, Proto::H1, "nobody", "x").await.status, 401);
    assert_eq!(login(&c, Proto::H1, "dave", "dave-pw").await.status, 403);
    // A name that would move the DN elsewhere stays inside the template.
    assert_eq!(
        login(&c, Proto::H1, "bob,ou=people", "bob-pw").await.status,
        401
    );
    let r = c
        .as_user_over(Proto::H2, "carol", Method::GET, BATCHES, "")
        .await;
    assert_eq!(r.status, 401, "carol's password is not the harness's");
    // carol is an administrator through memberOf: she may act for bob.
    let auth = basic("carol", "carol-pw");
    let r = c
        .send(
            Proto::H2,
            Method::POST,
            BATCHES,
            &[
                ("authorization", auth.as_bytes()),
                ("content-type", b"application/json"),
            ],
            r#"{"file":"a.jar","proxyUser":"bob"}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(r.json()["proxyUser"], "bob");
    // The DN the template makes of `BOB` is bob's entry (DNs compare without
    // regard to case); the name is read from it.
    let auth = basic("BOB", "bob-pw");
    let headers: [(&str, &[u8]); 2] = [
        ("authorization", auth.as_bytes()),
        ("content-type", b"application/json"),
    ];
    let r = c
        .send(
            Proto::H1,
            Method::POST,
            BATCHES,
            &headers,
            r#"{"file":"b.jar"}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(r.json()["proxyUser"], "bob");
}

#[tokio::test]
async fn tls_to_the_directory_with_ldaps_and_start_tls() {
    let slapd = Slapd::start().await;
    let ca = slapd.ca();
    let ldaps = LdapConfig {
        urls: vec![slapd.ldaps_url()],
        ca_file: Some(ca.clone()),
        ..directory(&slapd)
    };
    let gw = TestGateway::start(directory_only(ldaps)).await;
    assert_eq!(
        login(&gw.client(), Proto::H2, "alice", "alice-pw")
            .await
            .status,
        200
    );

    let start_tls = LdapConfig {
        urls: vec![slapd.url().replace("127.0.0.1", "localhost")],
        start_tls: true,
        ca_file: Some(ca),
        ..directory(&slapd)
    };
    let gw = TestGateway::start(directory_only(start_tls)).await;
    assert_eq!(
        login(&gw.client(), Proto::H1, "bob", "bob-pw").await.status,
        200
    );

    // A directory whose certificate the gateway does not trust is not used.
    let untrusted = LdapConfig {
        urls: vec![slapd.ldaps_url()],
        ..directory(&slapd)
    };
    let gw = TestGateway::start(directory_only(untrusted)).await;
    let r = login(&gw.client(), Proto::H1, "alice", "alice-pw").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "auth_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_goes_away_and_comes_back() {
    let mut slapd = Slapd::start().await;
    let gw = TestGateway::start(directory_only(directory(&slapd))).await;
    let c = gw.client();
    assert_eq!(login(&c, Proto::H1, "alice", "alice-pw").await.status, 200);
    let bob = login(&c, Proto::H2, "bob", "bob-pw").await;
    let cookie = bob.session_cookie().unwrap();
    assert_eq!(admin_get(gw.admin_addr, "/readyz").await.0, 200);

    slapd.stop().await;
    for proto in [Proto::H1, Proto::H2] {
        // A login never seen: 503, not a failed login.
        let r = login(&c, proto, "carol", "carol-pw").await;
        assert_eq!(r.status, 503, "{proto:?}");
        assert_eq!(r.json()["error"], "auth_unavailable");
        assert!(r.header("retry-after").is_some());
        // Remembered credentials and live sessions go on working.
        assert_eq!(login(&c, proto, "alice", "alice-pw").await.status, 200);
        assert_eq!(
            c.with_cookie(&cookie, Method::GET, BATCHES).await.status,
            200
        );
    }
    let (status, body) = admin_get(gw.admin_addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("logins"), "{body}");
    let m = scrape(&gw).await;
    assert_eq!(
        metric(&m, r#"livy_gateway_unavailable_total{kind="auth"}"#),
        2.0
    );
    assert!(
        !m.contains_key(r#"livy_gateway_auth_total{outcome="bad_credentials"}"#),
        "no failed login was counted"
    );

    // Back: the gateway recovers by itself.
    slapd.restart().await;
    let mut recovered = false;
    for _ in 0..50 {
        if login(&c, Proto::H1, "carol", "carol-pw").await.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "logins did not recover");
    assert_eq!(admin_get(gw.admin_addr, "/readyz").await.0, 200);
}

#[tokio::test]
async fn a_directory_that_does_not_answer_times_out_with_503() {
    // Accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            kept.push(stream);
        }
    });
    let slapd = Slapd::start().await;
    let ldap = LdapConfig {
        urls: vec![format!("ldap://127.0.0.1:{port}")],
        timeout: Duration::from_secs(1),
        ..directory(&slapd)
    };
    let gw = TestGateway::start(directory_only(ldap)).await;
    let r = login(&gw.client(), Proto::H2, "alice", "alice-pw").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "auth_unavailable");
    held.abort();
}

#[tokio::test]
async fn file_users_and_directory_users_side_by_side() {
    let slapd = Slapd::start().await;
    let ldap = directory(&slapd);
    let gw = TestGateway::start(Options::backend(fast_sim()).with(move |c| {
        c.auth.ldap = Some(ldap);
        c.auth.allowed_groups = vec!["livy-users".into()];
    }))
    .await;
    let c = gw.client();
    // From the file (tried first): always allowed.
    let r = c.as_user("admin", Method::GET, BATCHES, "").await;
    assert_eq!(r.status, 200);
    // alice is in both: the file decides.
    assert_eq!(login(&c, Proto::H1, "alice", PASSWORD).await.status, 200);
    assert_eq!(login(&c, Proto::H1, "alice", "alice-pw").await.status, 401);
    // From the directory.
    assert_eq!(login(&c, Proto::H2, "carol", "carol-pw").await.status, 200);
    assert_eq!(login(&c, Proto::H2, "dave", "dave-pw").await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_out_of_a_group_loses_access_within_the_cache_time() {
    let slapd = Slapd::start().await;
    let gw = TestGateway::start(directory_only(directory(&slapd)).with(|c| {
        c.auth.allowed_groups = vec!["livy-users".into()];
        c.auth.cache_ttl = secs(1);
    }))
    .await;
    let c = gw.client();
    let r = login(&c, Proto::H1, "bob", "bob-pw").await;
    assert_eq!(r.status, 200);
    let cookie = r.session_cookie().unwrap();
    slapd
        .modify(
            "dn: cn=livy-users,ou=groups,dc=example,dc=org\nchangetype: modify\n\
             delete: member\nmember: uid=bob,ou=people,dc=example,dc=org\n",
        )
        .await;
    // Past the cache's time, both the password and the session are checked again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(login(&c, Proto::H2, "bob", "bob-pw").await.status, 403);
    assert_eq!(
        c.with_cookie(&cookie, Method::GET, BATCHES).await.status,
        403
    );
    assert_eq!(login(&c, Proto::H2, "alice", "alice-pw").await.status, 200);
}

#[test]
fn check_config_probes_the_directory() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let slapd = runtime.block_on(Slapd::start());
    let dir = tempfile::tempdir().unwrap();
    let sans = ["localhost".to_string()];
    livy_gateway::certgen::write_to_dir(&dir.path().join("certs"), &sans).unwrap();
    let mut config = livy_gateway::config::Config::default();
    config.server.tls_cert = dir.path().join("certs/gateway.crt");
    config.server.tls_key = dir.path().join("certs/gateway.key");
    config.livy.upstreams =
        vec![livy_gateway::config::UpstreamUrl::parse("http://127.0.0.1:1").unwrap()];
    config.auth.ldap = Some(directory(&slapd));
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config.to_toml()).unwrap();
    let probe = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
            .args(["check-config", "--probe", "--config"])
            .arg(path)
            .output()
            .unwrap()
    };
    let out = probe(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("bound as cn=gateway,dc=example,dc=org"),
        "{stdout}"
    );
    assert!(stdout.contains("readable"), "{stdout}");
    assert!(
        stdout.contains("user names from attribute \"uid\""),
        "{stdout}"
    );
    // A wrong service password: the probe says so, and fails.
    std::fs::write(slapd.password_file(), "not-the-password\n").unwrap();
    let out = probe(&path);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("probe failed") && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-the-password"),
        "the password is not echoed"
    );
    drop(runtime);
}

/// The directory finds `uid=alice` under `ALICE` and `Alice` (it compares names
/// without regard to case): each spelling is alice, one identity for Livy, the
/// ownership records and the lockouts; blanks around a name are refused.
#[tokio::test]
async fn every_spelling_of_a_name_is_one_identity_and_one_lockout() {
    let slapd = Slapd::start().await;
    let gw = TestGateway::start(directory_only(directory(&slapd)).with(|c| {
        c.login.max_failures_per_pair = 3;
        c.login.max_failures_per_user = 3;
    }))
    .await;
    let c = gw.client();
    let send = |proto, user: &str, password: &str, method, path: String, body: &'static str| {
        let auth = basic(user, password);
        let c = c.clone();
        async move {
            let mut headers: Vec<(&str, &[u8])> = vec![("authorization", auth.as_bytes())];
            if !body.is_empty() {
                headers.push(("content-type", b"application/json"));
            }
            c.send(proto, method, &path, &headers, body).await
        }
    };
    for proto in [Proto::H1, Proto::H2] {
        let r = send(
            proto,
            "ALICE",
            "alice-pw",
            Method::POST,
            BATCHES.into(),
            r#"{"file":"a.jar"}"#,
        )
        .await;
        assert_eq!(r.status, 201, "{proto:?}: {:?}", r.body);
        assert_eq!(
            r.json()["proxyUser"],
            "alice",
            "Livy hears the directory's name"
        );
        let id = r.json()["id"].as_u64().unwrap();
        for spelling in ["Alice", "alice", "aLiCe"] {
            let path = format!("{BATCHES}/{id}");
            let r = send(proto, spelling, "alice-pw", Method::GET, path, "").await;
            assert_eq!(r.status, 200, "{spelling}: the same owner");
        }
        let r = send(
            proto,
            "bob",
            "bob-pw",
            Method::GET,
            format!("{BATCHES}/{id}"),
            "",
        )
        .await;
        assert_eq!(r.status, 404);
        for blanked in [" alice", "alice ", "\talice"] {
            let r = send(proto, blanked, "alice-pw", Method::GET, BATCHES.into(), "").await;
            assert_eq!(r.status, 401, "{blanked:?}");
        }
    }
    // A second uid on alice's entry is still alice: one entry, one user.
    slapd
        .modify(
            "dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modify\n\
             add: uid\nuid: liddell\n",
        )
        .await;
    let r = send(
        Proto::H2,
        "Liddell",
        "alice-pw",
        Method::POST,
        BATCHES.into(),
        r#"{"file":"b.jar"}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.json()["proxyUser"], "alice");
    // Three guesses in three spellings lock every spelling, the right password too.
    for spelling in ["DAVE", "Dave", "dAvE"] {
        let r = login(&c, Proto::H1, spelling, "guess").await;
        assert_eq!(r.status, 401, "{spelling}");
    }
    for spelling in ["dave", "DaVE"] {
        let r = login(&c, Proto::H2, spelling, "dave-pw").await;
        assert_eq!(r.status, 429, "{spelling}");
    }
}

/// Active Directory's filter that leaves disabled accounts out
/// (`userAccountControl` with bit 2, matched by the bitwise-and rule
/// 1.2.840.113556.1.4.803): a session of a user disabled meanwhile ends at its
/// next check. slapd knows the same matching rule; it is applied here to
/// `gidNumber`, an integer attribute its schema has (slapd has no
/// `userAccountControl`), with AD's values (512 enabled, 514 disabled).
#[tokio::test]
async fn a_disabled_account_loses_its_session_at_the_next_check() {
    let slapd = Slapd::start().await;
    let posix = |gid: u32| {
        format!(
            "dn: uid=bob,ou=people,dc=example,dc=org\nchangetype: modify\n\
             replace: gidNumber\ngidNumber: {gid}\n"
        )
    };
    slapd
        .modify(
            "dn: uid=bob,ou=people,dc=example,dc=org\nchangetype: modify\n\
             add: objectClass\nobjectClass: posixAccount\n-\n\
             add: uidNumber\nuidNumber: 1002\n-\n\
             add: gidNumber\ngidNumber: 512\n-\n\
             add: homeDirectory\nhomeDirectory: /home/bob\n",
        )
        .await;
    let ldap = LdapConfig {
        user_filter: "(&(uid={user})(!(gidNumber:1.2.840.113556.1.4.803:=2)))".into(),
        ..directory(&slapd)
    };
    let gw = TestGateway::start(directory_only(ldap).with(|c| c.auth.cache_ttl = secs(1))).await;
    let c = gw.client();
    let r = login(&c, Proto::H1, "Bob", "bob-pw").await;
    assert_eq!(r.status, 200);
    let cookie = r.session_cookie().unwrap();
    assert_eq!(
        c.with_cookie(&cookie, Method::GET, BATCHES).await.status,
        200
    );
    slapd.modify(&posix(514)).await;
    // Past the cache's time the session's user is looked up again, through the
    // filter, which no longer finds a disabled account.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        c.with_cookie(&cookie, Method::GET, BATCHES).await.status,
        401
    );
    for proto in [Proto::H1, Proto::H2] {
        assert_eq!(login(&c, proto, "bob", "bob-pw").await.status, 401);
    }
    slapd.modify(&posix(512)).await;
    assert_eq!(login(&c, Proto::H2, "bob", "bob-pw").await.status, 200);
}
