# frozen_string_literal: true

require_relative "lib/rake/version"

Gem::Specification.new do |s|
  s.name = "rake"
  s.version = Rake::VERSION
  s.authors = ["Hiroshi SHIBATA", "Eric Hodel", "Jim Weirich"]
  s.email = ["hsbt@ruby-lang.org", "drbrain@segment7.net", ""]

  s.summary = "Rake is a Make-like program implemented in Ruby"
  s.description = <<~DESCRIPTION
    Rake is a Make-like program implemented in Ruby. Tasks and dependencies are
    specified in standard Ruby syntax.
  DESCRIPTION
  s.homepage = "https://github.com/ruby/rake"
  s.licenses = ["MIT"]

  s.metadata = {
    "bug_tracker_uri" => "https://github.com/ruby/rake/issues",
    "changelog_uri" => "https://github.com/ruby/rake/blob/v#{s.version}/History.rdoc",
    "documentation_uri" => "https://ruby.github.io/rake",
    "source_code_uri" => "https://github.com/ruby/rake/tree/v#{s.version}"
  }

  s.files = [
    "History.rdoc",
    "MIT-LICENSE",
    "README.rdoc",
    "exe/rake",
  ]
  s.bindir = "exe"
  s.executables = s.files.grep(%r{^exe/}) { |f| File.basename(f) }
  s.require_paths = ["lib"]

  s.required_ruby_version = Gem::Requirement.new(">= 2.3")
  s.rdoc_options = ["--main", "README.rdoc"]
end
