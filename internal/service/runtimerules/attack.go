package runtimerules

// MITRE ATT&CK reference data the matrix needs: the order of the tactics
// and the names of the techniques the built-in rules use. The tactics'
// names come from internal/runtime/rules (rules.Tactics), which checks rule
// files against them.

// tacticOrder is the order of the tactics in the ATT&CK Enterprise matrix.
// The ATT&CK for Containers matrix is a subset of it in the same order
// (containerTactics), so one order serves both.
func tacticOrder() []string {
	return []string{
		"TA0043", // Reconnaissance
		"TA0042", // Resource Development
		"TA0001", // Initial Access
		"TA0002", // Execution
		"TA0003", // Persistence
		"TA0004", // Privilege Escalation
		"TA0005", // Defense Evasion
		"TA0006", // Credential Access
		"TA0007", // Discovery
		"TA0008", // Lateral Movement
		"TA0009", // Collection
		"TA0011", // Command and Control
		"TA0010", // Exfiltration
		"TA0040", // Impact
	}
}

// containerTactics are the tactics of the ATT&CK for Containers matrix:
// the matrix view always shows them, the others only when a rule or an
// event names them.
func containerTactics() map[string]bool {
	return map[string]bool{
		"TA0001": true, "TA0002": true, "TA0003": true, "TA0004": true, "TA0005": true,
		"TA0006": true, "TA0007": true, "TA0008": true, "TA0040": true,
	}
}

// techniqueNames names the ATT&CK techniques and sub-techniques the
// built-in runtime rules are tagged with, and the other techniques of the
// ATT&CK for Containers matrix (a test checks that every built-in rule's
// technique is here). An event naming another technique is shown by its ID.
func techniqueNames() map[string]string {
	return map[string]string{
		// ATT&CK for Containers techniques.
		"T1190":     "Exploit Public-Facing Application",
		"T1133":     "External Remote Services",
		"T1078":     "Valid Accounts",
		"T1609":     "Container Administration Command",
		"T1610":     "Deploy Container",
		"T1053":     "Scheduled Task/Job",
		"T1053.007": "Scheduled Task/Job: Container Orchestration Job",
		"T1204":     "User Execution",
		"T1204.003": "User Execution: Malicious Image",
		"T1098":     "Account Manipulation",
		"T1136":     "Create Account",
		"T1525":     "Implant Internal Image",
		"T1543":     "Create or Modify System Process",
		"T1543.005": "Create or Modify System Process: Container Service",
		"T1611":     "Escape to Host",
		"T1068":     "Exploitation for Privilege Escalation",
		"T1612":     "Build Image on Host",
		"T1562":     "Impair Defenses",
		"T1070":     "Indicator Removal",
		"T1036":     "Masquerading",
		"T1550":     "Use Alternate Authentication Material",
		"T1110":     "Brute Force",
		"T1528":     "Steal Application Access Token",
		"T1552":     "Unsecured Credentials",
		"T1552.001": "Unsecured Credentials: Credentials In Files",
		"T1552.007": "Unsecured Credentials: Container API",
		"T1613":     "Container and Resource Discovery",
		"T1046":     "Network Service Discovery",
		"T1069":     "Permission Groups Discovery",
		"T1485":     "Data Destruction",
		"T1499":     "Endpoint Denial of Service",
		"T1490":     "Inhibit System Recovery",
		"T1498":     "Network Denial of Service",
		"T1496":     "Resource Hijacking",
		// Further techniques the built-in rules use (Linux host matrix).
		"T1059":     "Command and Scripting Interpreter",
		"T1059.004": "Command and Scripting Interpreter: Unix Shell",
		"T1095":     "Non-Application Layer Protocol",
		"T1105":     "Ingress Tool Transfer",
		"T1204.002": "User Execution: Malicious File",
		"T1620":     "Reflective Code Loading",
		"T1140":     "Deobfuscate/Decode Files or Information",
		"T1098.004": "Account Manipulation: SSH Authorized Keys",
		"T1053.003": "Scheduled Task/Job: Cron",
		"T1543.002": "Create or Modify System Process: Systemd Service",
		"T1037.004": "Boot or Logon Initialization Scripts: RC Scripts",
		"T1546.004": "Event Triggered Execution: Unix Shell Configuration Modification",
		"T1574.006": "Hijack Execution Flow: Dynamic Linker Hijacking",
		"T1136.001": "Create Account: Local Account",
		"T1547.006": "Boot or Logon Autostart Execution: Kernel Modules and Extensions",
		"T1548.001": "Abuse Elevation Control Mechanism: Setuid and Setgid",
		"T1548.003": "Abuse Elevation Control Mechanism: Sudo and Sudo Caching",
		"T1055.008": "Process Injection: Ptrace System Calls",
		"T1562.001": "Impair Defenses: Disable or Modify Tools",
		"T1562.003": "Impair Defenses: Impair Command History Logging",
		"T1014":     "Rootkit",
		"T1003.008": "OS Credential Dumping: /etc/passwd and /etc/shadow",
		"T1552.005": "Unsecured Credentials: Cloud Instance Metadata API",
		"T1070.002": "Indicator Removal: Clear Linux or Mac System Logs",
		"T1070.003": "Indicator Removal: Clear Command History",
		"T1070.004": "Indicator Removal: File Deletion",
		"T1036.004": "Masquerading: Masquerade Task or Service",
		"T1036.005": "Masquerading: Match Legitimate Name or Location",
		"T1040":     "Network Sniffing",
		"T1571":     "Non-Standard Port",
	}
}
