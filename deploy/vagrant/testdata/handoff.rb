# Loads the Vagrantfile with a stand-in for Vagrant and runs its Handoff
# against a machine whose SSH channel is a local bash: the hand-off script
# then talks to the manager whose control socket is SHOAL_TEST_SOCKET.
require "fileutils"

module Vagrant
  def self.configure(_version); end
end
load ENV.fetch("SHOAL_TEST_VAGRANTFILE")

# LocalChannel stands in for machine.communicate: sudo runs the script here,
# with the manager's control socket where the test started it.
class LocalChannel
  def sudo(script)
    script = script.gsub("/var/lib/shoal/manager/control.sock", ENV.fetch("SHOAL_TEST_SOCKET"))
    out = IO.popen(["bash", "-c", script], &:read)
    raise "the hand-off script failed (exit #{$?.exitstatus})" unless $?.success?
    yield :stdout, out
  end
end

Machine = Struct.new(:communicate)
Handoff.fetch(Machine.new(LocalChannel.new), ENV.fetch("SHOAL_TEST_OUT"))
