"""Realistic open-source components and IQ's default policies, the raw material the simulator
builds reports and repository results from.

Kept apart from the seeded state so the data reads as data, and both the application reports
and the firewall draw on the same components.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from orchestrator.iq.firewall_models import ComponentIdentifier


@dataclass(frozen=True, slots=True)
class Policy:
    """An IQ policy as its violations show it: a fixed threat level and a category."""

    id: str
    name: str
    threat_level: int
    category: str


def _policy(name: str, threat_level: int, category: str) -> Policy:
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()
    return Policy(digest[:32], name, threat_level, category)


POLICIES: tuple[Policy, ...] = (
    _policy("Security-Malicious", 10, "SECURITY"),
    _policy("Security-Critical", 10, "SECURITY"),
    _policy("Security-High", 9, "SECURITY"),
    _policy("Security-Medium", 7, "SECURITY"),
    _policy("Security-Low", 3, "SECURITY"),
    _policy("License-Banned", 10, "LICENSE"),
    _policy("License-None", 9, "LICENSE"),
    _policy("License-Copyleft", 7, "LICENSE"),
    _policy("License-Threat Not Assessed", 5, "LICENSE"),
    _policy("Architecture-Quality", 3, "QUALITY"),
    _policy("Architecture-Cleanup", 1, "QUALITY"),
    _policy("Component-Unknown", 2, "OTHER"),
)
"""Policies and threat levels as IQ Server's reference policy set names them."""


@dataclass(frozen=True, slots=True)
class Component:
    """One component version: how IQ identifies it and how it shows it."""

    format: str
    coordinates: tuple[tuple[str, str], ...]
    display_text: str
    pathname: str
    package_url: str

    @property
    def hash(self) -> str:
        """A stable 20-hex-digit hash, the length IQ shows for component hashes."""
        return hashlib.sha1(self.package_url.encode(), usedforsecurity=False).hexdigest()[:20]

    @property
    def identifier(self) -> ComponentIdentifier:
        return ComponentIdentifier(format=self.format, coordinates=dict(self.coordinates))


def maven(group: str, artifact: str, version: str) -> Component:
    coordinates = (
        ("artifactId", artifact),
        ("classifier", ""),
        ("extension", "jar"),
        ("groupId", group),
        ("version", version),
    )
    path = f"{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"
    return Component(
        "maven",
        coordinates,
        f"{group} : {artifact} : {version}",
        path,
        f"pkg:maven/{group}/{artifact}@{version}?type=jar",
    )


def npm(name: str, version: str) -> Component:
    base = name.rsplit("/", 1)[-1]
    return Component(
        "npm",
        (("packageId", name), ("version", version)),
        f"{name} : {version}",
        f"{name}/-/{base}-{version}.tgz",
        f"pkg:npm/{name.replace('@', '%40')}@{version}",
    )


def pypi(name: str, version: str) -> Component:
    return Component(
        "pypi",
        (("extension", "tar.gz"), ("name", name), ("qualifier", ""), ("version", version)),
        f"{name} : {version}",
        f"packages/source/{name[0]}/{name}/{name}-{version}.tar.gz",
        f"pkg:pypi/{name}@{version}?extension=tar.gz",
    )


MAVEN = (
    ("org.apache.logging.log4j", "log4j-core", ("2.14.1", "2.17.1", "2.20.0", "2.23.1")),
    ("org.springframework", "spring-core", ("5.3.6", "5.3.31", "6.1.5")),
    ("org.springframework", "spring-web", ("5.3.18", "6.0.9", "6.1.5")),
    ("com.fasterxml.jackson.core", "jackson-databind", ("2.9.10.8", "2.13.4.2", "2.17.0")),
    ("org.apache.commons", "commons-text", ("1.9", "1.10.0", "1.11.0")),
    ("commons-collections", "commons-collections", ("3.2.1", "3.2.2")),
    ("commons-io", "commons-io", ("2.6", "2.11.0", "2.16.1")),
    ("com.google.guava", "guava", ("20.0", "31.1-jre", "33.1.0-jre")),
    ("org.yaml", "snakeyaml", ("1.26", "1.33", "2.2")),
    ("ant", "ant", ("1.6.1", "1.6.3")),
    ("org.apache.struts", "struts2-core", ("2.3.20", "2.5.30", "6.3.0.2")),
    ("io.netty", "netty-codec-http", ("4.1.68.Final", "4.1.108.Final")),
    ("org.bouncycastle", "bcprov-jdk15on", ("1.60", "1.70")),
    ("mysql", "mysql-connector-java", ("5.1.49", "8.0.33")),
    ("org.hibernate", "hibernate-core", ("5.4.24.Final", "6.4.4.Final")),
    ("ch.qos.logback", "logback-classic", ("1.2.3", "1.4.14")),
    ("org.apache.tomcat.embed", "tomcat-embed-core", ("9.0.43", "10.1.20")),
    ("com.h2database", "h2", ("1.4.200", "2.2.224")),
    ("xerces", "xercesImpl", ("2.12.0", "2.12.2")),
    ("junit", "junit", ("4.12", "4.13.2")),
)
NPM = (
    ("lodash", ("4.17.15", "4.17.20", "4.17.21")),
    ("minimist", ("0.0.8", "1.2.5", "1.2.8")),
    ("axios", ("0.21.1", "1.6.0", "1.6.8")),
    ("express", ("4.17.1", "4.19.2")),
    ("moment", ("2.24.0", "2.29.4")),
    ("jquery", ("1.12.4", "3.4.1", "3.7.1")),
    ("handlebars", ("4.0.11", "4.7.8")),
    ("node-fetch", ("2.6.0", "2.6.7", "3.3.2")),
    ("@babel/traverse", ("7.22.5", "7.24.1")),
    ("semver", ("5.7.1", "7.5.2", "7.6.0")),
    ("json5", ("1.0.1", "2.2.3")),
    ("ua-parser-js", ("0.7.28", "1.0.37")),
    ("event-stream", ("3.3.6", "4.0.1")),
    ("react", ("16.14.0", "18.2.0")),
    ("ws", ("7.4.5", "8.16.0")),
)
PYPI = (
    ("requests", ("2.19.1", "2.31.0")),
    ("urllib3", ("1.24.1", "1.26.18", "2.2.1")),
    ("pyyaml", ("5.3.1", "6.0.1")),
    ("django", ("2.2.10", "3.2.25", "4.2.11")),
    ("flask", ("0.12.2", "2.3.3", "3.0.2")),
    ("jinja2", ("2.10", "3.1.3")),
    ("cryptography", ("3.3.2", "42.0.5")),
    ("pillow", ("8.1.0", "10.3.0")),
    ("numpy", ("1.16.0", "1.26.4")),
    ("setuptools", ("50.3.2", "69.2.0")),
    ("paramiko", ("2.4.1", "3.4.0")),
    ("lxml", ("4.6.2", "5.2.1")),
)


def components(fmt: str) -> list[Component]:
    """Every component version of one format, in a stable order."""
    if fmt == "maven":
        return [maven(g, a, v) for g, a, versions in MAVEN for v in versions]
    if fmt == "npm":
        return [npm(n, v) for n, versions in NPM for v in versions]
    if fmt == "pypi":
        return [pypi(n, v) for n, versions in PYPI for v in versions]
    raise ValueError(f"no components of format {fmt!r}")


FORMATS = ("maven", "npm", "pypi")
