//! The example configurations shipped at the repository root must validate
//! on a bare machine (no secrets set, no CA files installed).

use std::path::Path;

fn example(name: &str) -> config::Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join(name);
    match config::load(&path) {
        Ok(plan) => plan,
        Err(e) => panic!("{name} does not validate:\n{e}"),
    }
}

#[test]
fn quickstart_validates_and_probes_its_own_health_endpoint() {
    let plan = example("quickstart.toml");
    assert_eq!(
        plan.agent.metrics_listen,
        Some("127.0.0.1:9464".parse().unwrap())
    );
    assert_eq!(plan.agent.state_dir, Path::new("./sonde-data"));
    let file = plan.sinks.file.as_ref().expect("file sink enabled");
    assert_eq!(file.dir, Path::new("./sonde-data/records"));
    assert!(plan.sinks.stdout.is_some());
    let checks: Vec<_> = plan.enabled_checks().collect();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].url.as_str(), "http://127.0.0.1:9464/healthz");
    assert_eq!(checks[0].interval, std::time::Duration::from_secs(2));
    assert!(checks[0].timeout < checks[0].interval);
}

#[test]
fn sample_validates_with_the_documented_defaults() {
    // As shipped it has no check: refused for that alone, so an agent
    // never starts with nothing to probe.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sonde.toml");
    let errors = config::load(&path).expect_err("no check enabled");
    assert_eq!(errors.len(), 1, "{errors}");
    assert_eq!(
        errors.errors()[0].kind,
        config::ErrorKind::NoEnabledChecks,
        "{errors}"
    );
    let text = std::fs::read_to_string(&path).unwrap()
        + "\n[[check]]\nname = \"api\"\nurl = \"https://api.example/\"\n";
    let plan = match config::parse(&text, "sonde.toml + one check", &config::SystemHost) {
        Ok(plan) => plan,
        Err(e) => panic!("sonde.toml with one check does not validate:\n{e}"),
    };
    assert_eq!(plan.agent.id, "sonde");
    assert_eq!(plan.agent.concurrency, config::defaults::CONCURRENCY);
    assert_eq!(plan.checks.len(), 1);
    let file = plan.sinks.file.as_ref().expect("file sink enabled");
    assert_eq!(file.segment_max_bytes, config::defaults::SEGMENT_MAX_BYTES);
    assert_eq!(file.retention_max_age, config::defaults::RETENTION_MAX_AGE);
}

#[test]
fn sample_checks_validate_when_uncommented() {
    // The commented [[check]] examples in sonde.toml are real configuration:
    // uncomment them (not the gateway, which needs a token file) and load.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sonde.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut in_checks = false;
    for line in text.lines() {
        if line.starts_with("# [[check]]") {
            in_checks = true;
        } else if !line.starts_with('#') {
            in_checks = false;
        }
        let line = if in_checks {
            line.strip_prefix("# ").unwrap_or(line)
        } else {
            line
        };
        out.push_str(line);
        out.push('\n');
    }
    struct Host;
    impl config::Host for Host {
        fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            assert_eq!(path, Path::new("/etc/sonde/api-token"));
            Ok(b"t0ken\n".to_vec())
        }
        fn var(&self, _: &str) -> Result<String, std::env::VarError> {
            Err(std::env::VarError::NotPresent)
        }
    }
    let plan = match config::parse(&out, "uncommented", &Host) {
        Ok(p) => p,
        Err(e) => panic!("{e}\n{out}"),
    };
    let names: Vec<&str> = plan.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["example-home", "api-health"]);
}
