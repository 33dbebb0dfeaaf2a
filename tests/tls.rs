//! TLS end to end: a cluster that speaks only TLS (cluster bus and replication too) and demands a
//! client certificate, decommissioned with `--cacert --cert --key`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runbook::config::{Credentials, Tls};
use runbook::model::Addr;

use crate::support::cluster::{Permit, free_port};
use crate::support::runbook;

struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1, and a client certificate, all signed by the CA.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=runbook test CA",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    for name in ["server", "client"] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        );
    }
}

#[test]
fn a_tls_only_cluster_with_client_certificates() {
    let _permit = Permit::acquire();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let server = runbook::sandbox::find_program("redis-server").expect("redis-server");
    let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
    let mut servers = Servers(Vec::new());
    for &p in &ports {
        let data = d.join(p.to_string());
        std::fs::create_dir_all(&data).unwrap();
        let mut args = runbook::sandbox::server_args(p, &data);
        let i = args.iter().position(|a| a == "--port").unwrap();
        args.splice(i..i + 2, ["--port".to_string(), "0".into(), "--tls-port".into(), p.to_string()]);
        let file = |n: &str| d.join(n).display().to_string();
        args.extend(
            [
                "--tls-cert-file",
                &file("server.crt"),
                "--tls-key-file",
                &file("server.key"),
                "--tls-ca-cert-file",
                &file("ca.crt"),
            ]
            .map(String::from),
        );
        args.extend(
            ["--tls-cluster", "yes", "--tls-replication", "yes", "--tls-auth-clients", "yes"].map(String::from),
        );
        servers.0.push(Command::new(&server).args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    }
    for &p in &ports {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
            assert!(Instant::now() < deadline, "port {p} never opened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let read = |n: &str| std::fs::read(d.join(n)).unwrap();
    let creds = Credentials {
        tls: Some(Tls { ca_pem: Some(read("ca.crt")), client: Some((read("client.crt"), read("client.key"))) }),
        ..Credentials::default()
    };
    let addrs: Vec<Addr> = ports.iter().map(|p| Addr::new("127.0.0.1", *p)).collect();
    let topo = runbook::sandbox::form_blocking(&addrs, 4, &creds).expect("form a TLS cluster");
    runbook::sandbox::load_keys(&topo, 4000, 16, &creds).expect("load keys over TLS");

    let seed = format!("127.0.0.1:{}", ports[0]);
    let file = |n: &str| d.join(n).display().to_string();
    let (ca, cert, key) = (file("ca.crt"), file("client.crt"), file("client.key"));
    let tls = ["--cacert", ca.as_str(), "--cert", cert.as_str(), "--key", key.as_str()];
    let victim = ports[3].to_string();
    let mut args = vec!["run", "decommission", "--node", victim.as_str(), "-c", seed.as_str(), "-y"];
    args.extend(tls);
    runbook(&args).run().expect_code(0).stderr_has("[ok  ] canary").stdout_has("decommissioned");
    let mut check = vec!["check", "--json", "-c", seed.as_str()];
    check.extend(tls);
    let out = runbook(&check).run();
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let keys: u64 = report["masters"].as_array().unwrap().iter().map(|m| m["keys"].as_u64().unwrap()).sum();
    assert_eq!(keys, 4000, "every key is still there");
    assert_eq!(report["masters"].as_array().unwrap().len(), 3);

    // Without a client certificate the nodes refuse, and runbook says it could not connect.
    let mut no_cert = vec!["check", "-c", seed.as_str(), "--cacert", ca.as_str()];
    no_cert.push("--tls");
    runbook(&no_cert).run().expect_code(4).stderr_has(&format!("cannot connect to {seed}"));
    // A key without its certificate is bad input, reported before connecting.
    runbook(&["check", "-c", &seed, "--key", &key]).run().expect_code(2).stderr_has("--cert and --key go together");
}
