/**
 * Container names: Docker-style random `adjective_surname` names for
 * containers created without `--name`, and the check a `--name` must pass.
 *
 * The word lists are trun's own (the surnames are scientists and engineers
 * whose work computing stands on). Generation follows dockerd's
 * `generateNewName`: a plain name first, then a name with a random digit
 * appended for a few more tries; past that trun keeps appending digits, so
 * a free name is always found.
 */

/** Adjectives: the first half of a generated name. */
export const ADJECTIVES: readonly string[] = [
  "admiring",
  "agile",
  "amazing",
  "ardent",
  "bold",
  "boring",
  "brave",
  "bright",
  "calm",
  "candid",
  "careful",
  "cheerful",
  "clever",
  "cosmic",
  "curious",
  "daring",
  "dazzling",
  "eager",
  "earnest",
  "elated",
  "elegant",
  "epic",
  "fearless",
  "festive",
  "fervent",
  "friendly",
  "gallant",
  "gentle",
  "gifted",
  "glowing",
  "graceful",
  "happy",
  "hardy",
  "humble",
  "jolly",
  "keen",
  "kind",
  "lively",
  "loyal",
  "lucid",
  "mellow",
  "merry",
  "modest",
  "nimble",
  "noble",
  "patient",
  "peaceful",
  "placid",
  "plucky",
  "quiet",
  "quirky",
  "radiant",
  "serene",
  "sharp",
  "sincere",
  "spirited",
  "steady",
  "sunny",
  "swift",
  "tender",
  "upbeat",
  "vibrant",
  "vigilant",
  "witty",
  "zealous",
];

/** Surnames of notable scientists and engineers: the second half. */
export const SURNAMES: readonly string[] = [
  "abel",
  "adleman",
  "agnesi",
  "alhazen",
  "ampere",
  "archimedes",
  "avogadro",
  "babbage",
  "backus",
  "bardeen",
  "bernoulli",
  "biruni",
  "bohr",
  "boltzmann",
  "bose",
  "boyle",
  "brunel",
  "cantor",
  "carson",
  "cauchy",
  "cerf",
  "chandrasekhar",
  "cray",
  "curie",
  "dalton",
  "darwin",
  "descartes",
  "diffie",
  "dijkstra",
  "dirac",
  "einstein",
  "elion",
  "engelbart",
  "euclid",
  "euler",
  "faraday",
  "fermat",
  "fermi",
  "feynman",
  "fibonacci",
  "fourier",
  "galois",
  "gauss",
  "germain",
  "godel",
  "goldwasser",
  "hamming",
  "hawking",
  "heisenberg",
  "hellman",
  "hertz",
  "hilbert",
  "hoare",
  "hodgkin",
  "hooke",
  "hopper",
  "hubble",
  "huygens",
  "hypatia",
  "joule",
  "kelvin",
  "kepler",
  "kernighan",
  "kilby",
  "knuth",
  "kovalevskaya",
  "lagrange",
  "lamarr",
  "lamport",
  "laplace",
  "lavoisier",
  "leavitt",
  "leibniz",
  "liskov",
  "lovelace",
  "maxwell",
  "mccarthy",
  "mcclintock",
  "meitner",
  "mendel",
  "mendeleev",
  "metcalfe",
  "minsky",
  "mirzakhani",
  "napier",
  "noether",
  "noyce",
  "nyquist",
  "pascal",
  "pasteur",
  "pauli",
  "planck",
  "poincare",
  "ramanujan",
  "ritchie",
  "rivest",
  "rubin",
  "shamir",
  "shannon",
  "tarjan",
  "tesla",
  "thompson",
  "turing",
  "volta",
  "wirth",
  "wozniak",
  "yalow",
];

/** The one combination never generated (Docker's: "Steve Wozniak is not boring"). */
const NEVER = "boring_wozniak";

/** Tries with a plain name, then with one appended digit, as dockerd's `generateNewName`. */
const PLAIN_TRIES = 1;
const ONE_DIGIT_TRIES = 5;

/**
 * A random `adjective_surname` not in `taken`. The first try is plain; the
 * next five append a random digit (`happy_curie3`); after that each try
 * appends one more digit, so a free name is always found. `random` returns
 * numbers in [0, 1) like `Math.random` (tests pass a fixed sequence).
 */
export function generateName(
  taken: ReadonlySet<string>,
  random: () => number = Math.random,
): string {
  const pick = (list: readonly string[]) =>
    list[Math.min(list.length - 1, Math.floor(random() * list.length))]!;
  for (let attempt = 0;; attempt++) {
    let name: string;
    do name = `${pick(ADJECTIVES)}_${pick(SURNAMES)}`; while (name === NEVER);
    const digits = attempt < PLAIN_TRIES
      ? 0
      : attempt < PLAIN_TRIES + ONE_DIGIT_TRIES
      ? 1
      : attempt - (PLAIN_TRIES + ONE_DIGIT_TRIES) + 2;
    for (let i = 0; i < digits; i++) name += String(Math.min(9, Math.floor(random() * 10)));
    if (!taken.has(name)) return name;
  }
}

/** Docker's rule for container names (`validContainerNamePattern`). */
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/**
 * Checks a `--name` against Docker's rule and returns it without the
 * leading "/" Docker also accepts (`/web` is `web`). Throws an error that
 * says what is allowed.
 */
export function validateName(name: string): string {
  const bare = name.startsWith("/") ? name.slice(1) : name;
  if (!NAME_PATTERN.test(bare)) {
    throw new Error(
      `Invalid container name "${name}": a name has at least two characters, ` +
        `starts with a letter or digit, and has only letters, digits, "_", "." and "-" ` +
        `(Docker's [a-zA-Z0-9][a-zA-Z0-9_.-]+)`,
    );
  }
  return bare;
}
