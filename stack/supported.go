package stack

import (
	"strings"

	"github.com/compose-spec/compose-go/v2/tree"
)

// supported lists every compose attribute shoal honours, as compose-go path
// patterns ("*" is any key or list item). Matching is exact: declaring a
// node does not accept what lies under it, so an attribute the compose
// specification gains later is reported as unsupported until it is added
// here on purpose. The paths are those of the merged, canonical model
// (short syntax already expanded: a volume "data:/d" is a map with type,
// source, target and an empty volume map).
var supported = append([]tree.Path{
	"name",
	"services",
	"services.*",
	"services.*.image",
	"services.*.command",
	"services.*.command.*",
	"services.*.entrypoint",
	"services.*.entrypoint.*",
	"services.*.environment",
	"services.*.environment.*",
	"services.*.env_file",
	"services.*.env_file.*",
	"services.*.env_file.*.path",
	"services.*.env_file.*.required",
	"services.*.env_file.*.format",
	"services.*.labels",
	"services.*.labels.*",
	"services.*.label_file",
	"services.*.label_file.*",
	"services.*.working_dir",
	"services.*.user",
	"services.*.profiles",
	"services.*.profiles.*",
	"services.*.stop_grace_period",

	"services.*.healthcheck",
	"services.*.healthcheck.test",
	"services.*.healthcheck.test.*",
	"services.*.healthcheck.interval",
	"services.*.healthcheck.timeout",
	"services.*.healthcheck.retries",
	"services.*.healthcheck.start_period",
	"services.*.healthcheck.disable",

	"services.*.secrets",
	"services.*.secrets.*",
	"services.*.secrets.*.source",
	"services.*.secrets.*.target",
	"services.*.secrets.*.uid",
	"services.*.secrets.*.gid",
	"services.*.secrets.*.mode",
	"services.*.configs",
	"services.*.configs.*",
	"services.*.configs.*.source",
	"services.*.configs.*.target",
	"services.*.configs.*.uid",
	"services.*.configs.*.gid",
	"services.*.configs.*.mode",
	"secrets",
	"secrets.*",
	"secrets.*.name",
	"secrets.*.file",
	"secrets.*.environment",
	"secrets.*.external",
	"secrets.*.labels",
	"secrets.*.labels.*",
	"configs",
	"configs.*",
	"configs.*.name",
	"configs.*.file",
	"configs.*.environment",
	"configs.*.content",
	"configs.*.external",
	"configs.*.labels",
	"configs.*.labels.*",

	"services.*.depends_on",
	"services.*.depends_on.*",
	"services.*.depends_on.*.condition",
	"services.*.depends_on.*.required",

	"services.*.volumes",
	"services.*.volumes.*",
	"services.*.volumes.*.type",
	"services.*.volumes.*.source",
	"services.*.volumes.*.target",
	"services.*.volumes.*.read_only",
	"services.*.volumes.*.bind",
	"services.*.volumes.*.bind.create_host_path",
	"services.*.volumes.*.volume",

	"services.*.deploy",
	"services.*.deploy.mode",
	"services.*.deploy.replicas",
	"services.*.deploy.labels",
	"services.*.deploy.labels.*",
	"services.*.deploy.resources",
	"services.*.deploy.resources.limits",
	"services.*.deploy.resources.limits.cpus",
	"services.*.deploy.resources.limits.memory",
	"services.*.deploy.resources.reservations",
	"services.*.deploy.resources.reservations.cpus",
	"services.*.deploy.resources.reservations.memory",
	"services.*.deploy.placement",
	"services.*.deploy.placement.constraints",
	"services.*.deploy.placement.constraints.*",
	"services.*.deploy.placement.preferences",
	"services.*.deploy.placement.preferences.*",
	"services.*.deploy.placement.preferences.*.spread",
	"services.*.deploy.placement.max_replicas_per_node",
	"services.*.deploy.restart_policy",
	"services.*.deploy.restart_policy.condition",
	"services.*.deploy.restart_policy.delay",
	"services.*.deploy.restart_policy.max_attempts",
	"services.*.deploy.restart_policy.window",
	"services.*.deploy.update_config",
	"services.*.deploy.update_config.parallelism",
	"services.*.deploy.update_config.delay",
	"services.*.deploy.update_config.failure_action",
	"services.*.deploy.update_config.monitor",
	"services.*.deploy.update_config.order",
	"services.*.deploy.update_config.max_failure_ratio",
	"services.*.deploy.rollback_config",
	"services.*.deploy.rollback_config.parallelism",
	"services.*.deploy.rollback_config.delay",
	"services.*.deploy.rollback_config.failure_action",
	"services.*.deploy.rollback_config.monitor",
	"services.*.deploy.rollback_config.order",
	"services.*.deploy.rollback_config.max_failure_ratio",

	"services.*.ports",
	"services.*.ports.*",
	"services.*.ports.*.mode",
	"services.*.ports.*.target",
	"services.*.ports.*.published",
	"services.*.ports.*.protocol",
	"services.*.ports.*.host_ip",
	"services.*.networks",
	"services.*.networks.*",
	"services.*.networks.*.aliases",
	"services.*.networks.*.aliases.*",
	"services.*.network_mode",
	"services.*.deploy.endpoint_mode",

	"networks",
	"networks.*",
	"networks.*.name",
	"networks.*.driver",
	"networks.*.attachable",
	"networks.*.internal",
	"networks.*.external",
	"networks.*.labels",
	"networks.*.labels.*",
	"networks.*.ipam",
	"networks.*.ipam.config",
	"networks.*.ipam.config.*",
	"networks.*.ipam.config.*.subnet",

	"volumes",
	"volumes.*",
	"volumes.*.name",
	"volumes.*.external",
}, containerTreePaths()...)

func containerTreePaths() []tree.Path {
	out := make([]tree.Path, len(containerPaths))
	for i, p := range containerPaths {
		out[i] = tree.Path(p)
	}
	return out
}

// attributeWarning turns a compose-go finding path such as
// "services.web.deploy.endpoint_mode" or "services.web.volumes.[].tmpfs"
// into a warning naming the service and the key.
func attributeWarning(p tree.Path) Warning {
	parts := p.Parts()
	if len(parts) >= 2 && parts[0] == "services" {
		return Warning{Service: parts[1], Key: joinKey(parts[2:]), Message: msgUnsupported}
	}
	return Warning{Key: joinKey(parts), Message: msgUnsupported}
}

// joinKey writes path parts the way people write compose keys: list items
// as "[]" glued to their list ("volumes[].tmpfs").
func joinKey(parts []string) string {
	var b strings.Builder
	for i, part := range parts {
		if part == tree.PathMatchList {
			b.WriteString("[]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}

const msgUnsupported = "not supported by shoal yet; ignored"
