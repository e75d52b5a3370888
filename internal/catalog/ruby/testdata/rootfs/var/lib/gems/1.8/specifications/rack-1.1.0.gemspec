# -*- encoding: utf-8 -*-

Gem::Specification.new do |spec|
  spec.name = %q{rack}
  spec.version = "1.1.0"

  spec.required_rubygems_version = Gem::Requirement.new(">= 0") if spec.respond_to? :required_rubygems_version=
  spec.authors = ["Christian Neukirchen"]
  spec.date = %q{2010-01-03}
  spec.description = %q{Rack provides minimal, modular and adaptable interface for developing
web applications in Ruby.
}
  spec.email = %q{chneukirchen@gmail.com}
  spec.homepage = %q{http://rack.rubyforge.org}
  spec.require_paths = ["lib"]
  spec.rubyforge_project = %q{rack}
  spec.rubygems_version = %q{1.3.5}
  spec.summary = %q{a modular Ruby webserver interface}

  if spec.respond_to? :specification_version then
    current_version = Gem::Specification::CURRENT_SPECIFICATION_VERSION
    spec.specification_version = 3
  end
end
