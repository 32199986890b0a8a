# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sonde_global_optspecs
    string join \n h/help V/version
end

function __fish_sonde_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sonde_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sonde_using_subcommand
    set -l cmd (__fish_sonde_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sonde -n "__fish_sonde_needs_command" -s h -l help -d 'Print help'
complete -c sonde -n "__fish_sonde_needs_command" -s V -l version -d 'Print version'
complete -c sonde -n "__fish_sonde_needs_command" -f -a "probe" -d 'Probe one URL once and show every phase\'s timing'
complete -c sonde -n "__fish_sonde_needs_command" -f -a "decode" -d 'Decode a sonde wire file (or stdin) to JSON Lines or CSV'
complete -c sonde -n "__fish_sonde_needs_command" -f -a "run" -d 'Run the agent: every check on its schedule, results to the sinks'
complete -c sonde -n "__fish_sonde_needs_command" -f -a "check-config" -d 'Validate a configuration file and print the normalised plan'
complete -c sonde -n "__fish_sonde_needs_command" -f -a "wait" -d 'Poll a URL until it is ready (a deploy gate); exit 0 ready, 1 failed, 3 deadline'
complete -c sonde -n "__fish_sonde_needs_command" -f -a "alert" -d 'Alert on checks that change state, across regions: read gateways, notify receivers'
complete -c sonde -n "__fish_sonde_needs_command" -f -a "gateway" -d 'Run the reference regional gateway: ingest from agents, live readers, wire files'
complete -c sonde -n "__fish_sonde_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l format -d 'Print the waterfall (text, the default) or one JSON object (json, phases as float milliseconds)' -r -f -a "text\t'The waterfall, for people'
json\t'One JSON object, phases as float milliseconds'"
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s m -l max-time -d 'Deadline for the whole probe: seconds, or a duration such as 500ms' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l expect-status -d 'Expected status codes, e.g. "200", "200-299", "2xx,304" (default 2xx,3xx)' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l body-contains -d 'The body must contain this text (searched as it streams)' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l body-matches -d 'The body\'s first 1 MiB (or --max-body-size) must match this regular expression' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l max-body-size -d 'Fail with body_too_large past this many bytes' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s X -l request -d 'Request method' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s H -l header -d 'Extra request header, "Name: value" (repeatable); it replaces the header of that name sonde (or -A, -u, --json, --compressed) would send' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s d -l data -d 'POST DATA as application/x-www-form-urlencoded (repeatable, joined with &); @FILE reads a file with carriage returns, newlines and NUL bytes stripped out, @- stdin' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l data-binary -d 'POST DATA exactly as given, with no extra processing (repeatable, joined with &); @FILE and @- keep every byte' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l json -d 'POST DATA as JSON: --data-binary DATA with "Content-Type: application/json" and "Accept: application/json" (repeatable, concatenated); @FILE, @-. Not an output format (sonde probe: --format json)' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s u -l user -d 'Server user and password, USER:PASSWORD, sent as Basic authentication (USER: for an empty password; sonde does not prompt)' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s A -l user-agent -d 'Send User-Agent NAME (default sonde/VERSION)' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l connect-timeout -d 'Maximum time for the connection: DNS, TCP, a proxy\'s CONNECT and TLS (seconds, or a duration such as 500ms; 0: no limit but --max-time)' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s x -l proxy -d 'Use this proxy, [http://][USER:PASSWORD@]HOST[:PORT] (port 1080 by default); "" uses none. Without -x: http_proxy, https_proxy, all_proxy (and HTTPS_PROXY, ALL_PROXY), as curl reads them' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l noproxy -d 'Hosts that go direct, comma-separated (a name matches itself and its subdomains; IPs, CIDR; "*" all); replaces no_proxy/NO_PROXY' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l resolve -d 'Use ADDR for HOST:PORT instead of resolving it (repeatable)' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l dns-server -d 'Ask this DNS server (IP or IP:PORT) instead of the system\'s' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l resolution-delay -d 'How long an A answer waits for AAAA before connecting (RFC 8305)' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l cacert -d 'Trust the CA certificates in this PEM file instead of the system roots (as curl)' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s E -l cert -d 'Client certificate (PEM) for mutual TLS' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l key -d 'Private key (PEM) of the client certificate' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l server-name -d 'Name for SNI, certificate checks and Host (the URL\'s host is still the address)' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l max-redirs -d 'Maximum redirects to follow with -L' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s o -l output -d 'Write the body to FILE instead of nowhere ("-": stdout, before the waterfall); decoded with --compressed; up to --max-body-size (sonde wait: the last attempt\'s)' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s w -l write-out -d 'After the probe, write FORMAT with curl\'s variables: %{http_code}, %{time_total} (and every time_* curl has), %{remote_ip}, %{json}..., sonde\'s phases as %{sonde_dns} %{sonde_connect} %{sonde_proxy} %{sonde_tls} %{sonde_ttfb} %{sonde_body} (seconds), %{stderr}; @FILE or @- reads FORMAT. Replaces the waterfall unless --format is given (sonde wait: once, for the last attempt). README: sonde probe' -r
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s I -l head -d 'Fetch the headers only (HEAD); they are shown on stderr, as -i shows them'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l compressed -d 'Ask for a compressed response (Accept-Encoding: deflate, gzip, br) and decode it: body checks and -o see the decoded bytes'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l http1.1 -d 'Use HTTP/1.1 (over TLS, ALPN offers http/1.1 only)'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l http2 -d 'Use HTTP/2 where the server takes it (ALPN h2, else HTTP/1.1; cleartext stays HTTP/1.1, no Upgrade)'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s 4 -l ipv4 -d 'Connect over IPv4 only'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s 6 -l ipv6 -d 'Connect over IPv6 only'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l system-roots -d 'With --cacert, trust the system roots too'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s k -l insecure -d 'Accept any server certificate (the handshake is still timed and checked)'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s L -l location -d 'Follow redirects'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -l allow-insecure-redirect -d 'With -L, follow a redirect from https to http (refused otherwise: insecure_redirect). Credentials still stay behind'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s i -l include -d 'Show the response head (status line and headers) on stderr (sonde wait: every attempt\'s)'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s v -l verbose -d 'Show the request ("> ") and response ("< ") heads and the connection ("* ") on stderr, after the probe (sonde wait: every attempt\'s)'
complete -c sonde -n "__fish_sonde_using_subcommand probe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonde -n "__fish_sonde_using_subcommand decode" -l format -d 'How to print: JSON Lines (records\' default), CSV with a header row, or an aligned table (--stats\' default; only with --stats)' -r -f -a "jsonl\t'One JSON object per record (or per statistics row)'
csv\t'A header row, then one row per record (or per statistics row)'
text\t'An aligned table for people (statistics only)'"
complete -c sonde -n "__fish_sonde_using_subcommand decode" -l follow -d 'Keep reading a file as it grows, like `tail -f` (until interrupted)'
complete -c sonde -n "__fish_sonde_using_subcommand decode" -l strict -d 'Exit with status 1 when any damage was found (it is always reported): a damaged region, a torn tail, an empty file. Empty stdin is no damage'
complete -c sonde -n "__fish_sonde_using_subcommand decode" -l stats -d 'Print per check and phase the count of up and down probes and the p50/p95/p99 of up probes and of down probes, instead of the records'
complete -c sonde -n "__fish_sonde_using_subcommand decode" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonde -n "__fish_sonde_using_subcommand run" -s c -l config -d 'The configuration file (default: the embedded examples/quickstart.toml, which also serves the live page and prints its URL)' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand run" -l ui-listen -d 'Serve the quickstart\'s live page here (default 127.0.0.1:9465; loopback only; port 0 picks a free one)' -r
complete -c sonde -n "__fish_sonde_using_subcommand run" -l metrics-listen -d 'Serve /metrics, /healthz and /readyz here (overrides agent.metrics_listen)' -r
complete -c sonde -n "__fish_sonde_using_subcommand run" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line (with its own timestamp, also under journald)'"
complete -c sonde -n "__fish_sonde_using_subcommand run" -l threads -d 'Runtime worker threads. One is cheapest per probe (no cross-thread wake-ups) and carries a few thousand probes a second; add threads for more, or for many TLS checks due at the same instant' -r
complete -c sonde -n "__fish_sonde_using_subcommand run" -l blackbox-config -d 'A blackbox_exporter configuration file: serve its modules at /probe?target=URL&module=NAME on the metrics listener (reloaded on SIGHUP). With it the configuration may have no check' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand run" -l blackbox-timeout-offset -d 'Seconds taken off the scrape\'s timeout header for /probe (blackbox_exporter\'s --timeout-offset)' -r
complete -c sonde -n "__fish_sonde_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonde -n "__fish_sonde_using_subcommand check-config" -l blackbox-config -d 'A blackbox_exporter configuration file to check as `sonde run --blackbox-config` loads it' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l status -d 'Ready statuses, e.g. "200", "200-299", "2xx,304"' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l body-contains -d 'The body must contain this text (repeatable)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l body-matches -d 'The body must match this regular expression (repeatable)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l ready-when -d 'A JSON condition on the response that must hold, e.g. \'.status == "completed"\' (repeatable)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l header-matches -d 'A response header must match, "Name: regex" (repeatable)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l fail-when -d 'End the wait as failed when this JSON condition holds, e.g. \'.status == "failed"\' (repeatable)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l retry-on -d 'Make permanent errors transient: statuses (401,403,404) or error classes (tls_untrusted, tls_expired, tls_hostname)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l timeout -d 'Overall deadline' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l interval -d 'First interval: the least time between attempts, and the backoff\'s base' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l max-interval -d 'The backoff\'s cap' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l attempt-timeout -d 'Deadline of one attempt' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l listen -d 'Also accept a signed webhook on this address (see README: sonde wait)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l secret-file -d 'The webhook\'s HMAC secret (trailing newline ignored)' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s X -l request -d 'Request method' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s H -l header -d 'Extra request header, "Name: value" (repeatable); it replaces the header of that name sonde (or -A, -u, --json, --compressed) would send' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s d -l data -d 'POST DATA as application/x-www-form-urlencoded (repeatable, joined with &); @FILE reads a file with carriage returns, newlines and NUL bytes stripped out, @- stdin' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l data-binary -d 'POST DATA exactly as given, with no extra processing (repeatable, joined with &); @FILE and @- keep every byte' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l json -d 'POST DATA as JSON: --data-binary DATA with "Content-Type: application/json" and "Accept: application/json" (repeatable, concatenated); @FILE, @-. Not an output format (sonde probe: --format json)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s u -l user -d 'Server user and password, USER:PASSWORD, sent as Basic authentication (USER: for an empty password; sonde does not prompt)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s A -l user-agent -d 'Send User-Agent NAME (default sonde/VERSION)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l connect-timeout -d 'Maximum time for the connection: DNS, TCP, a proxy\'s CONNECT and TLS (seconds, or a duration such as 500ms; 0: no limit but --max-time)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s x -l proxy -d 'Use this proxy, [http://][USER:PASSWORD@]HOST[:PORT] (port 1080 by default); "" uses none. Without -x: http_proxy, https_proxy, all_proxy (and HTTPS_PROXY, ALL_PROXY), as curl reads them' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l noproxy -d 'Hosts that go direct, comma-separated (a name matches itself and its subdomains; IPs, CIDR; "*" all); replaces no_proxy/NO_PROXY' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l resolve -d 'Use ADDR for HOST:PORT instead of resolving it (repeatable)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l dns-server -d 'Ask this DNS server (IP or IP:PORT) instead of the system\'s' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l resolution-delay -d 'How long an A answer waits for AAAA before connecting (RFC 8305)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l cacert -d 'Trust the CA certificates in this PEM file instead of the system roots (as curl)' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s E -l cert -d 'Client certificate (PEM) for mutual TLS' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l key -d 'Private key (PEM) of the client certificate' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l server-name -d 'Name for SNI, certificate checks and Host (the URL\'s host is still the address)' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l max-redirs -d 'Maximum redirects to follow with -L' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s o -l output -d 'Write the body to FILE instead of nowhere ("-": stdout, before the waterfall); decoded with --compressed; up to --max-body-size (sonde wait: the last attempt\'s)' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s w -l write-out -d 'After the probe, write FORMAT with curl\'s variables: %{http_code}, %{time_total} (and every time_* curl has), %{remote_ip}, %{json}..., sonde\'s phases as %{sonde_dns} %{sonde_connect} %{sonde_proxy} %{sonde_tls} %{sonde_ttfb} %{sonde_body} (seconds), %{stderr}; @FILE or @- reads FORMAT. Replaces the waterfall unless --format is given (sonde wait: once, for the last attempt). README: sonde probe' -r
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l json-output -d 'Print a JSON summary on stdout at the end'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s I -l head -d 'Fetch the headers only (HEAD); they are shown on stderr, as -i shows them'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l compressed -d 'Ask for a compressed response (Accept-Encoding: deflate, gzip, br) and decode it: body checks and -o see the decoded bytes'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l http1.1 -d 'Use HTTP/1.1 (over TLS, ALPN offers http/1.1 only)'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l http2 -d 'Use HTTP/2 where the server takes it (ALPN h2, else HTTP/1.1; cleartext stays HTTP/1.1, no Upgrade)'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s 4 -l ipv4 -d 'Connect over IPv4 only'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s 6 -l ipv6 -d 'Connect over IPv6 only'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l system-roots -d 'With --cacert, trust the system roots too'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s k -l insecure -d 'Accept any server certificate (the handshake is still timed and checked)'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s L -l location -d 'Follow redirects'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -l allow-insecure-redirect -d 'With -L, follow a redirect from https to http (refused otherwise: insecure_redirect). Credentials still stay behind'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s i -l include -d 'Show the response head (status line and headers) on stderr (sonde wait: every attempt\'s)'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s v -l verbose -d 'Show the request ("> ") and response ("< ") heads and the connection ("* ") on stderr, after the probe (sonde wait: every attempt\'s)'
complete -c sonde -n "__fish_sonde_using_subcommand wait" -s h -l help -d 'Print help'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and not __fish_seen_subcommand_from silence dead-letters help" -s c -l config -d 'The alerter\'s configuration (alert.toml)' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand alert; and not __fish_seen_subcommand_from silence dead-letters help" -l log-format -d 'Log format on stderr, while the alerter runs' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line (with its own timestamp, also under journald)'"
complete -c sonde -n "__fish_sonde_using_subcommand alert; and not __fish_seen_subcommand_from silence dead-letters help" -l threads -d 'Worker threads of the async runtime' -r
complete -c sonde -n "__fish_sonde_using_subcommand alert; and not __fish_seen_subcommand_from silence dead-letters help" -l check -d 'Validate the configuration and exit (0 valid, 2 invalid)'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and not __fish_seen_subcommand_from silence dead-letters help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and not __fish_seen_subcommand_from silence dead-letters help" -f -a "silence" -d 'Silences and maintenance windows added at run time (persisted)'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and not __fish_seen_subcommand_from silence dead-letters help" -f -a "dead-letters" -d 'Notifications a receiver never took: list them, or replay them'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and not __fish_seen_subcommand_from silence dead-letters help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from silence" -s c -l config -d 'The alerter\'s configuration (alert.toml)' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from silence" -s h -l help -d 'Print help'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from silence" -f -a "add" -d 'Silence checks (by name glob) for a while'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from silence" -f -a "list" -d 'List the silences: alert.toml\'s and those added at run time'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from silence" -f -a "remove" -d 'Remove a silence added at run time, by id'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from silence" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from dead-letters" -l receiver -d 'Only this receiver\'s' -r
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from dead-letters" -s c -l config -d 'The alerter\'s configuration (alert.toml)' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from dead-letters" -l replay -d 'Put them back in their receivers\' queues (the running alerter): these ids, or all with --all'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from dead-letters" -l all -d 'With --replay: every dead letter'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from dead-letters" -l json -d 'Print JSON Lines instead of a table'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from dead-letters" -s h -l help -d 'Print help'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from help" -f -a "silence" -d 'Silences and maintenance windows added at run time (persisted)'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from help" -f -a "dead-letters" -d 'Notifications a receiver never took: list them, or replay them'
complete -c sonde -n "__fish_sonde_using_subcommand alert; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sonde -n "__fish_sonde_using_subcommand gateway" -s c -l config -d 'The gateway configuration (gateway.toml)' -r -F
complete -c sonde -n "__fish_sonde_using_subcommand gateway" -l log-format -d 'Log format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line (with its own timestamp, also under journald)'"
complete -c sonde -n "__fish_sonde_using_subcommand gateway" -l threads -d 'Worker threads of the async runtime' -r
complete -c sonde -n "__fish_sonde_using_subcommand gateway" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonde -n "__fish_sonde_using_subcommand help; and not __fish_seen_subcommand_from probe decode run check-config wait alert gateway help" -f -a "probe" -d 'Probe one URL once and show every phase\'s timing'
complete -c sonde -n "__fish_sonde_using_subcommand help; and not __fish_seen_subcommand_from probe decode run check-config wait alert gateway help" -f -a "decode" -d 'Decode a sonde wire file (or stdin) to JSON Lines or CSV'
complete -c sonde -n "__fish_sonde_using_subcommand help; and not __fish_seen_subcommand_from probe decode run check-config wait alert gateway help" -f -a "run" -d 'Run the agent: every check on its schedule, results to the sinks'
complete -c sonde -n "__fish_sonde_using_subcommand help; and not __fish_seen_subcommand_from probe decode run check-config wait alert gateway help" -f -a "check-config" -d 'Validate a configuration file and print the normalised plan'
complete -c sonde -n "__fish_sonde_using_subcommand help; and not __fish_seen_subcommand_from probe decode run check-config wait alert gateway help" -f -a "wait" -d 'Poll a URL until it is ready (a deploy gate); exit 0 ready, 1 failed, 3 deadline'
complete -c sonde -n "__fish_sonde_using_subcommand help; and not __fish_seen_subcommand_from probe decode run check-config wait alert gateway help" -f -a "alert" -d 'Alert on checks that change state, across regions: read gateways, notify receivers'
complete -c sonde -n "__fish_sonde_using_subcommand help; and not __fish_seen_subcommand_from probe decode run check-config wait alert gateway help" -f -a "gateway" -d 'Run the reference regional gateway: ingest from agents, live readers, wire files'
complete -c sonde -n "__fish_sonde_using_subcommand help; and not __fish_seen_subcommand_from probe decode run check-config wait alert gateway help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sonde -n "__fish_sonde_using_subcommand help; and __fish_seen_subcommand_from alert" -f -a "silence" -d 'Silences and maintenance windows added at run time (persisted)'
complete -c sonde -n "__fish_sonde_using_subcommand help; and __fish_seen_subcommand_from alert" -f -a "dead-letters" -d 'Notifications a receiver never took: list them, or replay them'
