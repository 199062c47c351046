"""The answer contract: how every grader, reward, eval table, `grade` and `check-format` read and
compare a final answer. One statement, in three steps; the code of each step is named.

1. Where the answer is read from (`format.answer.find_answer`, `rewards.answer.read_answer`).
   - strict (our default, used by the "math-verify" grader and by `check-format`'s
     `missing_answer`): only text outside paths — the main text and the summaries, in text order.
     Paths are never read: a path is one line of thought among several, not the response's
     conclusion, and a policy must not be paid for an answer its summary or main text never
     commits to. Text between paths and everything after an unclosed `<Parallel>` (a block cut by
     the length limit, paths included) are not read either. In that text the answer is the last
     `Final Answer:` label that has an answer: the label is case-insensitive, may carry markdown
     (`**Final Answer**: 18`, `**Final Answer:** 18`, `### Final Answer: 18`, or a line holding
     only `**Final Answer**` with the answer on the next line), and its answer is the rest of the
     line, or the next non-blank line. With no such label, the last complete `\\boxed{...}`
     (boxes written as one list on one line, `\\boxed{2} and \\boxed{3}`, are read together).
     An answer that says nothing — nothing left once struck-out text, markdown, math
     delimiters, empty `\\boxed{}`/`\\text{}` and punctuation go (`**`, `$$`, `\\boxed{}`, `.`,
     `\\text{}`; `format.answer.is_blank_answer`) — is no answer: the label or box before it is
     read instead (`Final Answer: 18` then `Final Answer: $$` is 18), and a label whose line says
     nothing takes the next line that does (`Final Answer:` / `$$` / `18` / `$$` is 18). A line
     of words alone (`Final Answer: see above`) is an answer, graded as words.
     No answer there means no answer: wrong, counted as "no answer", and `missing_answer`.
   - paper (the "paper" grader, reproducing SPEC 4.2): the last `Final Answer:` match in the last
     300 characters of the text with its tags removed — paths included, unclosed blocks included;
     `\\boxed{}` is not read. "paper-gsm8k" reads the paper's `gsm8k.py` way: the last number right
     after `Final Answer: ` in those 300 characters.
   - common (`rewards.readers`, only by name in `eval --answer-reader common` and `grade
     --answer-reader common`, never in a reward): the grader's reading, else the last `#### X`,
     else the last `the answer is X` / `Answer: X`; for models not trained on this contract.
2. How an answer line reduces to its expression (`rewards.expression`, `rewards.plaintext`).
   - Markdown (`**18**`, `*18*`, backticks, `#`), boxes (nested boxes unwrapped; several boxes on
     the line form a list), `\\text{}`/`\\textbf{}`/`\\mathrm{}`/`\\mbox{}` (their words become
     words), math delimiters (`$..$`, `\\(..\\)`, `\\[..\\]`) and a closing period are removed.
   - Money: `$18`, `\\$18.00`, `€18`, `18 dollars`, `USD 18` are 18 (a `$` pair around a formula
     with no words is math, not money); `50 cents` is 0.50 and `18 dollars and 50 cents` 18.50.
     Scale words multiply: `3.5 million` is 3500000 (hundred, thousand, million, billion,
     trillion; `5 dozen` is 60). Thousands separators (`1,000`, `1{,}000`, `1\\,000`) go.
   - Words: the line is split at top-level commas and semicolons into phrases and at words into
     math runs. Leading words are filler (`The answer is 18`); words after a number are units
     (`18 apples`, `18 cm^2`, `5 km/h`, `30 degrees`), but of one to three letters only unit
     symbols are (`m`, `s`, `kg`, `mL`, `m/s^2`; `expression.UNIT_SYMBOLS`): `3 x` is 3x and
     `5 i` is 5i. `is`/`equals` between two runs is `=` (`x is 5`). An aside in brackets holding
     words is dropped (`16 (not 18)` -> 16), unless it offers an alternative (`18 (or 16)`); so
     is a bracket after a number and a space (`18 (16 + 2)` is 18, not 18 x 18). An explanation
     ends the answer: a phrase or a word such as which, since, because, so, where, it (`18,
     which is 2 more than 16` -> 18). `not X` drops X (`18, not 16` -> 18); `negative 3` and
     `minus 3` are -3. Self-corrections: struck-out text (`~~18~~ 16`, `<del>`, `\\sout{}`) is
     deleted, and an explicit correction marker — `is wrong`/`incorrect`, `no` before
     punctuation or a number (`18? No, 16`), `correction:`, `actually`, `I mean`, also as an
     aside `18 (actually 16)` — withdraws everything before it: what follows is the answer
     (`18 is wrong, it's 16` -> 16). A marker with no math after it withdraws nothing
     (`18, actually.` is 18), except `is wrong`/`incorrect` (`18 is wrong` is no answer). Runs joined by or, and, maybe, but, wait, rather, to,
     between are all kept as a list (`16 or 18` -> {16, 18}): a hedge is graded as the list of
     its candidates, so it is right only against a list gold — hedging never pays. `2 and 1/2`
     and `2 1/2` are 5/2. A choice label before a value is dropped (`(C) 12` -> 12) unless the
     gold is a letter (see 3).
   - Plain-text math is rewritten as LaTeX: `pi` and `π` are π, `sqrt(x)`, `\\sqrt(x)`, `√x` are
     √x (`4\\sqrt(2)` is 4√2), `cbrt`, `exp(x)` is e^x, `ln`, `log` (base 10), `sin`..., `^` and
     `**` are powers (`2^10` is 1024), `1.5e3` and `1.5 x 10^3` are 1500, `∞`/`inf` are ∞,
     unicode `−`, `×`, `÷`, `²` as meant. Degrees (`30°`, `30^\\circ`) drop the degree sign.
     Percentages keep their `%` (see 3).
   - A line with no math left is a word answer (`\\text{even}` -> "even"). A line over
     2,000 characters is not read (wrong). An expression with brackets nested more than 20 deep
     or more than 200 brackets is not answer-shaped: refused before math-verify (whose parser
     takes seconds on such lines), wrong, and counted (`Verdict.refused`, the reward part
     `grade_refused`, `grade`'s output).
3. How two reduced answers compare (`rewards.equivalence`, `rewards.letters`).
   - Multiple choice: a gold that is one letter A-J (`C`, `(C)`, `\\text{(C)}`) is matched by a
     prediction naming exactly that letter (`(C)`, `C`, `(C) 12`, `Option C`); two letters are
     wrong.
   - Words compare as lower-case words. Math goes through math-verify's parser; two numbers are
     equal when their exact values are equal — decimals as written are exact (`0.25` = 1/4,
     `18.0` = 18), values are compared to as many digits as tell them apart, relative to their
     size, never with an absolute tolerance (`2^{-99}` != `2^{-98}`, `10^{-7}` != `2\\times10^{-7}`).
     A decimal of at least 6 significant digits equals a value without a finite decimal expansion
     that it rounds or truncates (`0.333333` = 1/3, `3.14159` = π; `3.14` != π). `X%` equals X
     and X/100 (`10%` = 10 = 0.1). Tuples, sets, intervals and matrices of numbers compare element
     by element with the same rule (sets in any order; `(1, 2]` != `(1, 2)`). Everything else
     (expressions with symbols, equations, inequalities; `x > 3` = `(3, \\infty)`) is math-verify's
     `verify`.
   - Every grade runs under a time limit (5 s, any thread); a grade that runs out is wrong and
     counted as timed out (`Verdict.timed_out`, the eval summary, `grade`'s output).

Votes (Maj@k, self-consistency) group answers with the same comparison (`rewards.grading.
equivalent`): `0.5`, `\\frac{1}{2}` and `1/2` are one answer; answers naming different choice
letters (`(B) 12`, `(C) 12`) are not, and `C` is one answer with `(C) 12`. Format rewards
follow the same split: the strict grader's rewards use the strict format rule (empty paths or
summaries — whitespace or invisible characters such as `\\u200b` only — are malformed and
earn no parallel bonus); the paper grader's use the paper's rule
(SPEC 1.3).
"""

from __future__ import annotations

from parallel_r1.rewards.answer import read_answer
from parallel_r1.rewards.expression import Reduced, reduce_answer
from parallel_r1.rewards.grading import (
    DEFAULT_GRADER,
    Verdict,
    equivalent,
    grade_detail,
    grade_response_detail,
    reading_of,
)

__all__ = ["DEFAULT_GRADER", "Reduced", "Verdict", "equivalent", "grade_detail",
           "grade_response_detail", "read_answer", "reading_of", "reduce_answer"]
