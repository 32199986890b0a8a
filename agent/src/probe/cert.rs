//! Certificate facts, parsed after the probe from the DER copies taken in
//! the handshake: notAfter, the leaf's identity as blackbox_exporter labels
//! it (SHA-256 fingerprint, subject and issuer as Go's `pkix.Name.String()`
//! prints them, DNS SANs, serial). The name formatting is a pure function
//! of the name's attributes ([`go_name`]), tested rule by rule.

use std::fmt::Write as _;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::X509Name;

use super::tls::CertSummary;

/// An attribute's value as Go's asn1 package reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// A string type (UTF8String, PrintableString, IA5String, ...).
    Text(String),
    /// Anything else, as its DER (tag, length, content).
    Der(Vec<u8>),
}

/// One attribute: the dotted OID and its value.
pub(crate) type Attribute = (String, Value);

/// The short names Go gives the attributes it parses into fields, in the
/// order `ToRDNSequence` emits them (C, ST, L, STREET, POSTALCODE, O, OU,
/// then CN and SERIALNUMBER, one value each).
const FIELDS: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// A name as Go's `pkix.Name.String()` prints a parsed certificate's:
/// the attributes Go has fields for are regrouped (all of one type in one
/// RDN joined by `+`; the last CN and SERIALNUMBER only), the others kept
/// one per RDN before them; then the RDNs are printed in reverse, `,`
/// separated, values escaped (RFC 2253-like), other types as the dotted
/// OID and `#` and the hex of the value's DER.
pub(crate) fn go_name(rdns: &[Vec<Attribute>]) -> String {
    let attributes = || rdns.iter().flatten();
    let mut sequence: Vec<Vec<(&str, &Value)>> = Vec::new();
    // Types Go does not parse into fields come first (so print last).
    for (oid, value) in attributes() {
        if !FIELDS.iter().any(|(known, _)| known == oid) {
            sequence.push(vec![(oid.as_str(), value)]);
        }
    }
    for (known, _) in FIELDS {
        let values: Vec<&Value> = attributes()
            .filter(|(oid, value)| oid == known && matches!(value, Value::Text(_)))
            .map(|(_, value)| value)
            .collect();
        let values = match (known, values.last()) {
            (_, None) => continue,
            // One value only: the last one parsed wins, and an empty one
            // is left out (ToRDNSequence tests `len(n.CommonName) > 0`).
            ("2.5.4.3" | "2.5.4.5", Some(Value::Text(last))) if last.is_empty() => continue,
            ("2.5.4.3" | "2.5.4.5", Some(last)) => vec![*last],
            _ => values,
        };
        sequence.push(values.into_iter().map(|v| (known, v)).collect());
    }
    let mut out = String::new();
    for (i, rdn) in sequence.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, (oid, value)) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match (FIELDS.iter().find(|(known, _)| known == oid), value) {
                (Some((_, short)), Value::Text(text)) => {
                    out.push_str(short);
                    out.push('=');
                    escape_into(&mut out, text);
                }
                (_, value) => {
                    out.push_str(oid);
                    out.push_str("=#");
                    hex_into(&mut out, &go_der(value));
                }
            }
        }
    }
    out
}

/// Go's escaping of a value: `,+"\<>;` always, a space first or last, a
/// `#` first.
fn escape_into(out: &mut String, value: &str) {
    let last = value.len().saturating_sub(1);
    for (k, c) in value.char_indices() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The DER Go's `asn1.Marshal` gives a value it parsed: a string is
/// re-encoded, as PrintableString when every character is printable (no
/// `*` or `&`), else as UTF8String, whatever its type was on the wire.
fn go_der(value: &Value) -> Vec<u8> {
    match value {
        Value::Der(der) => der.clone(),
        Value::Text(text) => {
            let printable = text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
            let tag = if printable { 0x13 } else { 0x0c };
            der_tlv(&[tag], text.as_bytes())
        }
    }
}

/// `tag` is the identifier octets, class and constructed bits included.
fn der_tlv(tag: &[u8], content: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn hex_into(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    hex_into(&mut out, bytes);
    out
}

/// A parsed name's attributes, RDN by RDN.
fn attributes(name: &X509Name<'_>) -> Vec<Vec<Attribute>> {
    name.iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let any = atv.attr_value();
                    let data = any.data;
                    let text = match any.tag().0 {
                        // UTF8String, NumericString, PrintableString,
                        // T61String, IA5String, as Go reads them.
                        12 | 18 | 19 | 20 | 22 => Some(String::from_utf8_lossy(data).into_owned()),
                        // BMPString: UTF-16, big-endian.
                        30 => {
                            let units: Vec<u16> = data
                                .chunks(2)
                                .map(|p| u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)]))
                                .collect();
                            Some(String::from_utf16_lossy(&units))
                        }
                        _ => None,
                    };
                    let value = match text {
                        Some(text) => Value::Text(text),
                        None => Value::Der(der_tlv(&identifier(&any.header), data)),
                    };
                    (atv.attr_type().to_id_string(), value)
                })
                .collect()
        })
        .collect()
}

/// A value's identifier octets as on the wire: class, constructed bit and
/// tag number (0x30 for a SEQUENCE, not 0x10).
fn identifier(header: &x509_parser::asn1_rs::Header<'_>) -> Vec<u8> {
    if let Some(raw) = header.raw_tag() {
        return raw.to_vec();
    }
    let class = (header.class() as u8) << 6;
    let constructed = if header.is_constructed() { 0x20 } else { 0 };
    match u8::try_from(header.tag().0) {
        Ok(number) if number < 31 => vec![class | constructed | number],
        // High tag numbers: base 128, high bit on all but the last.
        _ => {
            let mut number = header.tag().0;
            let mut digits = vec![(number & 0x7f) as u8];
            number >>= 7;
            while number > 0 {
                digits.push(0x80 | (number & 0x7f) as u8);
                number >>= 7;
            }
            digits.push(class | constructed | 0x1f);
            digits.reverse();
            digits
        }
    }
}

/// A certificate's subject, as Go prints it.
pub(crate) fn subject(cert: &X509Certificate<'_>) -> String {
    go_name(&attributes(cert.subject()))
}

/// The leaf's identity, as blackbox_exporter's `probe_ssl_last_chain_info`
/// labels it.
pub(crate) fn summary(der: &[u8], cert: &X509Certificate<'_>) -> CertSummary {
    let fingerprint = ring::digest::digest(&ring::digest::SHA256, der);
    let dns_names: Vec<&str> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(name) => Some(*name),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    CertSummary {
        fingerprint_sha256: hex(fingerprint.as_ref()),
        subject: subject(cert),
        issuer: go_name(&attributes(cert.issuer())),
        subject_alternative: dns_names.join(","),
        serial: serial_hex(cert.raw_serial()),
    }
}

/// The serial as Go's `big.Int.Text(16)` prints it: lowercase hex, no
/// leading zeros ("0" for zero).
fn serial_hex(raw: &[u8]) -> String {
    let digits = hex(raw);
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(oid: &str, value: &str) -> Attribute {
        (oid.to_owned(), Value::Text(value.to_owned()))
    }

    const CN: &str = "2.5.4.3";
    const O: &str = "2.5.4.10";
    const OU: &str = "2.5.4.11";
    const C: &str = "2.5.4.6";
    const EMAIL: &str = "1.2.840.113549.1.9.1";

    #[test]
    fn rdns_print_in_reverse() {
        let name = [
            vec![text(C, "US")],
            vec![text(O, "Acme")],
            vec![text(CN, "a.example")],
        ];
        assert_eq!(go_name(&name), "CN=a.example,O=Acme,C=US");
    }

    #[test]
    fn known_types_are_regrouped_in_gos_field_order() {
        // On the wire CN first, then O, then C: Go prints from its fields.
        let name = [
            vec![text(CN, "x")],
            vec![text(O, "Acme")],
            vec![text(C, "DE")],
        ];
        assert_eq!(go_name(&name), "CN=x,O=Acme,C=DE");
        let every = [
            vec![text("2.5.4.5", "42")],
            vec![text(CN, "cn")],
            vec![text(OU, "ou")],
            vec![text(O, "o")],
            vec![text("2.5.4.17", "12345")],
            vec![text("2.5.4.9", "Main St")],
            vec![text("2.5.4.7", "Town")],
            vec![text("2.5.4.8", "State")],
            vec![text(C, "FR")],
        ];
        assert_eq!(
            go_name(&every),
            "SERIALNUMBER=42,CN=cn,OU=ou,O=o,POSTALCODE=12345,STREET=Main St,L=Town,ST=State,C=FR"
        );
    }

    #[test]
    fn values_of_one_type_share_an_rdn() {
        let name = [
            vec![text(OU, "b")],
            vec![text(OU, "a")],
            vec![text(CN, "x")],
        ];
        assert_eq!(go_name(&name), "CN=x,OU=b+OU=a");
    }

    #[test]
    fn only_the_last_common_name_is_printed() {
        let name = [vec![text(CN, "first")], vec![text(CN, "second")]];
        assert_eq!(go_name(&name), "CN=second");
    }

    #[test]
    fn other_types_print_as_oid_and_gos_der_last() {
        // An email address (IA5String on the wire) is re-encoded by Go as
        // UTF8String, '@' not being printable.
        let name = [vec![text(CN, "x")], vec![text(EMAIL, "a@b.c")]];
        assert_eq!(go_name(&name), "CN=x,1.2.840.113549.1.9.1=#0c056140622e63");
        // A printable one becomes a PrintableString; several keep their
        // order reversed, before every known type.
        let name = [
            vec![text("0.9.2342.19200300.100.1.25", "com")],
            vec![text("0.9.2342.19200300.100.1.25", "example")],
            vec![text(CN, "x")],
        ];
        assert_eq!(
            go_name(&name),
            "CN=x,0.9.2342.19200300.100.1.25=#13076578616d706c65,0.9.2342.19200300.100.1.25=#1303636f6d"
        );
        let raw = [vec![(
            "1.2.3.4".to_owned(),
            Value::Der(vec![0x02, 0x01, 0x05]),
        )]];
        assert_eq!(go_name(&raw), "1.2.3.4=#020105");
    }

    #[test]
    fn special_characters_are_escaped() {
        let name = [vec![text(CN, r#"a,b+c"d\e<f>g;h"#)]];
        assert_eq!(go_name(&name), r#"CN=a\,b\+c\"d\\e\<f\>g\;h"#);
    }

    #[test]
    fn spaces_are_escaped_at_the_ends_only_and_hash_first_only() {
        let name = [vec![text(CN, " a b ")]];
        assert_eq!(go_name(&name), r"CN=\ a b\ ");
        let name = [vec![text(O, "#1#")]];
        assert_eq!(go_name(&name), r"O=\#1#");
    }

    #[test]
    fn an_empty_common_name_or_serial_number_is_left_out() {
        let name = [
            vec![text("2.5.4.10", "org")],
            vec![text("2.5.4.3", "")],
            vec![text("2.5.4.5", "")],
        ];
        assert_eq!(go_name(&name), "O=org");
        // The last value is the field's: an empty last one hides the rest.
        let name = [vec![text("2.5.4.3", "first")], vec![text("2.5.4.3", "")]];
        assert_eq!(go_name(&name), "");
        // Other types keep their empty values.
        assert_eq!(go_name(&[vec![text("2.5.4.10", "")]]), "O=");
    }

    #[test]
    fn an_unknown_values_tag_keeps_its_class_and_constructed_bits() {
        // Name { SET { ATV { 1.2.3.4, SEQUENCE { INTEGER 1 } } } }, then
        // the same with a context-specific [2] primitive.
        let seq = [
            0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x30, 0x03, 0x02,
            0x01, 0x01,
        ];
        let ctx = [
            0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x82, 0x01, 0x07,
        ];
        for (der, want) in [
            (&seq[..], "1.2.3.4=#3003020101"),
            (&ctx[..], "1.2.3.4=#820107"),
        ] {
            let (_, name) = <X509Name as x509_parser::asn1_rs::FromDer<
                x509_parser::error::X509Error,
            >>::from_der(der)
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(go_name(&attributes(&name)), want);
        }
    }

    #[test]
    fn an_empty_name_is_empty() {
        assert_eq!(go_name(&[]), "");
    }

    #[test]
    fn long_values_get_a_long_der_length() {
        let long = "x".repeat(200);
        assert_eq!(&der_tlv(&[0x13], long.as_bytes())[..3], &[0x13, 0x81, 200]);
    }

    /// A leaf made with openssl (odd characters, every field Go has,
    /// DC and emailAddress), and what blackbox_exporter 0.23.0 labelled it
    /// with (`probe_ssl_last_chain_info`, label escaping undone).
    #[test]
    fn a_real_certificate_is_labelled_as_blackbox_exporter_labels_it() {
        let pem = include_bytes!("testdata/go_names_leaf.pem");
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem).unwrap_or_else(|e| panic!("{e}"));
        let cert = pem.parse_x509().unwrap_or_else(|e| panic!("{e}"));
        let s = summary(&pem.contents, &cert);
        assert_eq!(
            s.fingerprint_sha256,
            "46fa711939cd8484e8995510718209fd894d47859d933e07ba5e50620a5e5218"
        );
        assert_eq!(
            s.subject,
            r#"SERIALNUMBER=42,CN=\ lead#ing,OU=a,O=Acme\; \"Q\",POSTALCODE=10115,STREET=Main St 1,L=Town,ST=Berlin,C=DE,0.9.2342.19200300.100.1.25=#1303636f6d,0.9.2342.19200300.100.1.25=#13076578616d706c65,1.2.840.113549.1.9.1=#0c056140622e63"#
        );
        assert_eq!(s.issuer, r"CN=bbx inter,O=Inter\, Org,C=US");
        assert_eq!(s.subject_alternative, "bbx.test,alt.test");
        assert_eq!(s.serial, "1fe2c65be76293fdefc100b66f84472c6e8aed76");
    }

    #[test]
    fn serials_drop_leading_zeros() {
        assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8f01");
        assert_eq!(serial_hex(&[0x00]), "0");
        assert_eq!(serial_hex(&[0x0a]), "a");
    }
}
