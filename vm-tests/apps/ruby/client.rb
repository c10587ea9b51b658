# Makes N GET requests to URL over one keep-alive Net::HTTP connection; HTTPS
# through Ruby's openssl extension (the system's libssl), with the test's
# self-signed certificate accepted.
#
# Usage: ruby client.rb URL N
#
# It starts once it has read a line on stdin (after its libraries are
# loaded), so a test can first see it traced.
# Prints one line per request, "<status> <start_ns> <end_ns>": wall-clock
# nanoseconds from before the request is sent to after its body is read.
require 'net/http'
require 'openssl'
require 'uri'

abort 'usage: ruby client.rb URL N' unless ARGV.size == 2
uri = URI(ARGV[0])
count = Integer(ARGV[1])
now_ns = -> { Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond) }
$stdout.sync = true
$stdin.gets
options = { use_ssl: uri.scheme == 'https', verify_mode: OpenSSL::SSL::VERIFY_NONE,
            open_timeout: 30, read_timeout: 30 }
Net::HTTP.start(uri.host, uri.port, nil, nil, nil, nil, options) do |http|
  count.times do
    start = now_ns.call
    response = http.request(Net::HTTP::Get.new(uri))
    puts "#{response.code} #{start} #{now_ns.call}"
  end
end
