# frozen_string_literal: true

Gem::Specification.new do |s|
  s.name = "json"
  s.summary = "JSON Implementation for Ruby"
  s.homepage = "https://ruby.github.io/json"
  s.metadata = {
    'bug_tracker_uri'   => 'https://github.com/ruby/json/issues',
    'source_code_uri'   => 'https://github.com/ruby/json',
  }
  s.required_ruby_version = Gem::Requirement.new(">= 2.3")
  s.authors = ["Florian Frank"]
  s.email = "flori@ping.de"
  s.licenses = ['Ruby']
end
