# Sample HTTP/1.1 service for the VM tests: a Rack app served by Puma (Debian's
# ruby-rack and puma packages). Same API as the other apps; see ../README.md.
# Run: PORT=8080 [DOWNSTREAM_URL=http://127.0.0.1:9000/health] [TLS_CERT=cert.pem TLS_KEY=key.pem] ruby server.rb
require 'json'
require 'net/http'
require 'puma'
require 'puma/events'
require 'puma/server'
require 'uri'

# The Rack application: one router, as in the other apps; unknown routes are 404.
class App
  TEXT = { 'Content-Type' => 'text/plain' }.freeze
  JSON_TYPE = { 'Content-Type' => 'application/json' }.freeze

  def call(env)
    method = env['REQUEST_METHOD']
    path = env['PATH_INFO']
    # Always read the body, so the next request on the connection starts in the right place.
    body = env['rack.input'].read
    get = method == 'GET'
    user = path.start_with?('/users/') ? path.delete_prefix('/users/') : ''
    if get && path == '/health'
      reply(200, 'ok')
    elsif get && !user.empty? && !user.include?('/')
      reply(200, JSON.generate({ id: user }), JSON_TYPE)
    elsif method == 'POST' && path == '/users'
      reply(201, JSON.generate({ received: body.bytesize }), JSON_TYPE)
    elsif get && path == '/error'
      reply(500, 'error')
    elsif get && path == '/chunked'
      # No Content-Length and a body of several parts: Puma sends it chunked.
      [200, TEXT.dup, %w[part1; part2; part3]]
    elsif get && path == '/downstream'
      downstream
    else
      reply(404, 'not found')
    end
  end

  def reply(status, body, headers = TEXT)
    [status, headers.merge('Content-Length' => body.bytesize.to_s), [body]]
  end

  # One GET over a new connection (Net::HTTP.start opens and closes one), on this thread.
  def downstream
    url = ENV['DOWNSTREAM_URL']
    return reply(500, 'DOWNSTREAM_URL not set') if url.nil? || url.empty?

    uri = URI(url)
    status = Net::HTTP.start(uri.host, uri.port, open_timeout: 10, read_timeout: 10) do |http|
      http.request(Net::HTTP::Get.new(uri)).code
    end
    reply(200, "downstream #{status}")
  rescue StandardError
    reply(502, 'downstream error')
  end
end

port = ENV['PORT']
abort 'PORT environment variable is required' if port.nil? || port.empty?

# Quiet events (no log line per request); 16 threads, so 50 clients at once are served.
server = Puma::Server.new(App.new, Puma::Events.strings, min_threads: 1, max_threads: 16)
if ENV['TLS_CERT'].to_s.empty?
  server.add_tcp_listener('127.0.0.1', Integer(port))
else
  # HTTPS through Puma's MiniSSL, an extension on the system's libssl.
  ctx = Puma::MiniSSL::Context.new
  ctx.cert = ENV['TLS_CERT']
  ctx.key = ENV['TLS_KEY']
  ctx.verify_mode = Puma::MiniSSL::VERIFY_NONE
  server.add_ssl_listener('127.0.0.1', Integer(port), ctx)
end
$stdout.sync = true
puts "listening on #{server.connected_ports.first}"
begin
  server.run.join
rescue Interrupt
  server.stop(true)
end
