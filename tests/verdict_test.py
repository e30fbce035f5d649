"""The controls' verdict and the Eq. 1-vs-lens check on hand-made readings with known answers:
Welch tests per instrument, Holm-Bonferroni within a pair, no separation without spread,
censored transfer readings left out, and the report's tables and sentences."""

from tests import testing  # noqa: F401  (first: fake devices)

import types

import numpy as np
from absl.testing import absltest
from scipy import stats as scipy_stats

from babel_jax.dynamics import analysis, controls, stats, study_report
from babel_jax.dynamics import curves as curves_lib

CLONE, SCRAMBLED, PARTIAL = 'python_clone', 'python_scrambled', 'python_partial'


def _readings(**values):
  """Readings per seed from {number: [value per seed]}; every other number reads None."""
  n = len(next(iter(values.values())))
  return [{**dict.fromkeys(controls.NUMBERS), **{k: v[i] for k, v in values.items()}}
          for i in range(n)]


def _entries(t, pair):
  return {e['instrument']: e for e in t['separation'] if tuple(e['pair']) == pair}


def _study(t=None, dynamics=None):
  return study_report.Study(languages=('python',), dynamics=dynamics or {}, run_reports={},
                            phases=[], seeds=3, controls=t)


class StatsTest(absltest.TestCase):

  def test_welch_p_and_no_spread(self):
    a, b = [1.0, 2.0, 4.0], [3.0, 5.0, 6.0, 8.0]
    d = stats.difference(a, b)
    want = scipy_stats.ttest_ind(b, a, equal_var=False)
    self.assertAlmostEqual(d['p'], want.pvalue, places=10)
    self.assertAlmostEqual(d['diff'], 5.5 - 7 / 3)
    self.assertLess(d['low'], 0)  # p > 0.05 and the interval covers zero: they agree
    self.assertGreater(d['p'], 0.05)
    # Both sides without spread: no interval, no p, whatever the means.
    flat = stats.difference([0.4, 0.4, 0.4], [0.5, 0.5, 0.5])
    self.assertAlmostEqual(flat['diff'], 0.1)
    self.assertEqual((flat['low'], flat['high'], flat['p']), (None, None, None))
    self.assertIn('no spread', flat['reason'])
    self.assertIsNotNone(stats.difference([0.4, 0.4], [0.5, 0.6])['p'])  # one side suffices

  def test_holm_known_answer(self):
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1: 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06.
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    self.assertEqual(stats.holm([]), [])


class VerdictTest(absltest.TestCase):

  def test_a_pair_that_separates(self):
    t = controls.verdicts({
        CLONE: _readings(transfer_end=[1.0, 1.1, 1.2], lens_early=[0.1, 0.2, 0.3]),
        SCRAMBLED: _readings(transfer_end=[0.0, 0.1, -0.1], lens_early=[0.8, 0.85, 0.9])},
        [CLONE, SCRAMBLED])
    e = _entries(t, (CLONE, SCRAMBLED))
    self.assertEqual(e['transfer_end']['tests'], 2)
    p = scipy_stats.ttest_ind([1.0, 1.1, 1.2], [0.0, 0.1, -0.1], equal_var=False).pvalue
    self.assertAlmostEqual(e['transfer_end']['p'], p)
    # Holm over two tests: the smaller p (transfer_end's) times 2, the larger times 1 but not
    # below the smaller's adjusted p.
    q = e['lens_early']['p']
    self.assertLess(p, q)
    self.assertAlmostEqual(e['transfer_end']['p_holm'], 2 * p)
    self.assertAlmostEqual(e['lens_early']['p_holm'], max(2 * p, q))
    self.assertTrue(e['transfer_end']['separates'] and e['transfer_end']['validated'])
    self.assertIn(f'separates ({CLONE} higher', e['transfer_end']['verdict'])
    # The lens separates too, but the clone reads lower: opposite to transfer, not validated.
    self.assertTrue(e['lens_early']['separates'])
    self.assertFalse(e['lens_early']['validated'])
    self.assertIn('opposite to what transfer predicts', e['lens_early']['verdict'])
    self.assertIn('no test (fewer than 2 readings a side (0, 0))', e['p_star']['verdict'])
    found = controls.findings(t)
    positive = next(s for s in found if s.startswith('Positive against negative control'))
    self.assertIn('validated at this scale: effective data transferred at the end', positive)
    self.assertIn('Not validated at this scale: transfer_mean, lens_early', positive)

  def test_zero_spread_on_both_sides_does_not_separate(self):
    t = controls.verdicts({CLONE: _readings(lens_late=[0.5, 0.5, 0.5]),
                           SCRAMBLED: _readings(lens_late=[0.4, 0.4, 0.4])}, [CLONE, SCRAMBLED])
    e = _entries(t, (CLONE, SCRAMBLED))['lens_late']
    self.assertAlmostEqual(e['difference']['diff'], 0.1)
    self.assertIsNone(e['p'])
    self.assertFalse(e['separates'])
    self.assertFalse(e['validated'])
    self.assertIn('no test (no spread', e['verdict'])
    self.assertEqual(e['tests'], 0)
    positive = controls.findings(t)[1]
    self.assertIn('no instrument separates them as transfer predicts', positive)
    self.assertIn('No test (no spread over seeds, or fewer than 2 readings a side): '
                  'transfer_end, transfer_mean, lens_early, lens_late', positive)

  def test_separates_uncorrected_but_not_after_holm(self):
    # transfer_end: difference 2.5, sd 1 a side, n 3: t = 3.06 on 4 degrees of freedom,
    # p = 0.038 < 0.05; two more tests that see nothing make Holm's p 3 * 0.038 = 0.11.
    clone = _readings(transfer_end=[1.0, 2.0, 3.0], lens_early=[0.5, 0.6, 0.7],
                      transferring_neurons=[3.0, 4.0, 5.0])
    scrambled = _readings(transfer_end=[-1.5, -0.5, 0.5], lens_early=[0.5, 0.6, 0.8],
                          transferring_neurons=[3.0, 5.0, 4.0])
    t = controls.verdicts({CLONE: clone, SCRAMBLED: scrambled}, [CLONE, SCRAMBLED])
    e = _entries(t, (CLONE, SCRAMBLED))
    end = e['transfer_end']
    p = scipy_stats.ttest_ind([1.0, 2.0, 3.0], [-1.5, -0.5, 0.5], equal_var=False).pvalue
    self.assertAlmostEqual(end['p'], p)
    self.assertAlmostEqual(p, 0.0376, places=3)
    self.assertGreater(end['difference']['low'], 0)  # the 95% interval excludes zero
    self.assertEqual(end['tests'], 3)
    self.assertAlmostEqual(end['p_holm'], 3 * p)
    self.assertFalse(end['separates'])
    self.assertFalse(end['validated'])
    self.assertIn('does not separate after the Holm correction', end['verdict'])
    self.assertAlmostEqual(e['transferring_neurons']['p'], 1.0)
    found = ' '.join(controls.findings(t))
    self.assertIn('no instrument separates them as transfer predicts', found)
    self.assertIn('Separated before but not after the Holm correction: effective data '
                  f'transferred at the end of continual training, D_T / D_F (p {p:.3g}, Holm '
                  f'{3 * p:.3g})', found)

  def test_holm_is_within_each_pair_and_the_other_pairs_verdicts(self):
    t = controls.verdicts({
        CLONE: _readings(transfer_end=[1.0, 1.1, 1.2], lens_late=[0.1, 0.2, 0.3]),
        PARTIAL: _readings(transfer_end=[0.5, 0.6, 0.7], lens_late=[0.2, 0.3, 0.4]),
        SCRAMBLED: _readings(transfer_end=[0.0, 0.1, -0.1], lens_late=[0.1, 0.3, 0.2])},
        [CLONE, PARTIAL, SCRAMBLED])
    pairs = {tuple(e['pair']) for e in t['separation']}
    self.assertEqual(pairs, {(CLONE, SCRAMBLED), (PARTIAL, SCRAMBLED), (CLONE, PARTIAL)})
    for pair in pairs:
      self.assertEqual(_entries(t, pair)['transfer_end']['tests'], 2)  # this pair's 2 tests
    clone_partial = _entries(t, (CLONE, PARTIAL))['transfer_end']
    self.assertNotIn('validated', clone_partial)
    self.assertNotIn('as_predicted', clone_partial)  # no direction is predicted
    self.assertTrue(clone_partial['separates'])
    self.assertIn(f'{CLONE} against {PARTIAL}: separated by', ' '.join(controls.findings(t)))
    partial = _entries(t, (PARTIAL, SCRAMBLED))['transfer_end']
    self.assertTrue(partial['as_predicted'])
    self.assertNotIn('validated', partial)  # only the clone against the scrambled validates

  def test_censored_transfer_readings_are_counted_and_left_out(self):
    """A reference as long as the continual run: the late readings are censored."""
    tokens = np.linspace(0, 1.6e6, 17)
    power = lambda d: np.where(d > 0, 50 * np.maximum(d, 1) ** -0.3 + 1, 10.0)  # noqa: E731
    ahead = controls.transfer_reading(tokens, power(tokens + 0.73e6), tokens, power(tokens))
    self.assertIsNone(ahead['transfer_end'])
    self.assertTrue(ahead['transfer_end_censored'])
    self.assertIsNone(ahead['transfer_mean'])  # a mean over bounds is a bound
    self.assertTrue(ahead['transfer_mean_censored'])
    self.assertAlmostEqual(ahead['transfer_end_lower_bound'], 0.0)  # D_E capped at D_F
    long = np.linspace(0, 4 * 1.6e6, 65)  # a reference four times as long: nothing censored
    behind = controls.transfer_reading(tokens, power(tokens + 0.1e6), long, power(long))
    self.assertFalse(behind['transfer_end_censored'])
    self.assertAlmostEqual(behind['transfer_end'], 0.1 / 1.6, places=3)
    base = _readings(lens_late=[0.1, 0.2, 0.3])
    clone = [{**r, **x} for r, x in zip(base, (ahead, ahead, behind))]
    scrambled = [{**r, **behind, 'transfer_end': v} for r, v in zip(base, (0.0, 0.01, 0.02))]
    t = controls.verdicts({CLONE: clone, SCRAMBLED: scrambled}, [CLONE, SCRAMBLED])
    summary = t['languages'][CLONE]['summary']
    self.assertEqual((summary['transfer_end']['n'], summary['transfer_end']['censored']), (1, 2))
    self.assertEqual(summary['transfer_mean']['censored'], 2)
    e = _entries(t, (CLONE, SCRAMBLED))['transfer_end']
    self.assertEqual(e['a']['n'], 1)  # the two bounds are out of the test
    self.assertEqual(e['censored'], [2, 0])
    self.assertIn('no test (fewer than 2 readings a side (1, 3))', e['verdict'])
    found = ' '.join(controls.findings(t))
    self.assertIn(f'{CLONE} {behind["transfer_end"]:.2f} (n=1) (2 censored left out)', found)
    all_censored = controls.verdicts({CLONE: [{**r, **ahead} for r in base]}, [])
    self.assertIn(f'{CLONE}: all 3 censored (≥ 0.00)',
                  ' '.join(controls.findings(all_censored)))

  def test_table_reads_seed_k_against_reference_k_mod_r_with_both_start_losses(self):
    tokens = np.arange(5) * 100.0

    def run(name, loss):
      return types.SimpleNamespace(run=name, steps=np.arange(5), tokens=tokens,
                                   loss=np.asarray(loss, float), lens=None,
                                   transferring_neurons=np.array([4, 3, 2, 1, 0]))

    fit = types.SimpleNamespace(p_star=None, problem='no peak', alpha=2.0, beta=3.0)
    a = types.SimpleNamespace(stages=types.SimpleNamespace(translation_end=None,
                                                           stabilization_start=None), eq1=fit)
    continual = [(run(f'c{k}', [3.0 + k / 10, 2.9, 2.8, 2.7, 2.6]), a) for k in range(3)]
    refs = [run('r0', [6.0, 3.5, 3.0, 2.8, 2.7]), run('r1', [6.2, 3.6, 3.1, 2.9, 2.8])]
    t = controls.table({'go': continual}, {'go': refs}, [])
    seeds = t['languages']['go']['seeds']
    self.assertEqual([s['reference'] for s in seeds], ['r0', 'r1', 'r0'])  # k mod 2
    self.assertEqual([s['loss_at_step0'] for s in seeds], [3.0, 3.1, 3.2])
    self.assertEqual([s['reference_loss_at_step0'] for s in seeds], [6.0, 6.2, 6.0])
    summary = t['languages']['go']['summary']
    self.assertAlmostEqual(summary['loss_at_step0']['mean'], 3.1)
    self.assertAlmostEqual(summary['reference_loss_at_step0']['mean'], 18.2 / 3)
    # Seed 0 reaches 2.6 at 400 tokens; reference 0 gets there beyond its end: censored.
    self.assertTrue(seeds[0]['transfer_end_censored'])
    # The report shows the two start losses side by side, and both p-values per test.
    page = '\n'.join(study_report._controls_section(_study(t)))
    self.assertIn('| translation ends | stabilization starts | loss at step 0 | reference loss '
                  'at step 0 |', page)
    row = next(line for line in page.splitlines() if line.startswith('| go |'))
    cells = [c.strip() for c in row.strip('|').split('|')]
    self.assertEqual(len(cells), 2 + len(controls.NUMBERS))
    self.assertTrue(cells[-2].startswith('3.100 ['), cells[-2])
    self.assertTrue(cells[-1].startswith('6.067 ['), cells[-1])
    self.assertIn('| instrument | pair | difference (first - second) | p | p (Holm) | verdict |',
                  page)


def _analysis(r, levels=0.9):
  fit = types.SimpleNamespace(beta=3.0, alpha=2.0, rule='rule', p_star=None, best_step=None,
                              problem='no peak')
  return (None, types.SimpleNamespace(eq1=fit, eq1_vs_lens=r, eq1_vs_lens_levels=levels))


class Eq1VsLensTest(absltest.TestCase):

  def test_changes_not_levels(self):
    # Two rising curves whose steps alternate 1, 2 and 2, 1: the levels correlate (> 0.99),
    # the step-to-step changes are exactly opposite.
    a = np.cumsum([0, 1, 2, 1, 2, 1, 2, 1, 2])
    b = np.cumsum([0, 2, 1, 2, 1, 2, 1, 2, 1])
    self.assertGreater(analysis.stages_lib.correlation(a, b), 0.99)
    self.assertAlmostEqual(analysis.change_correlation(a, b), -1.0)
    # analyze() reports the changes' correlation as eq1_vs_lens, the levels' beside it.
    steps = np.arange(9)
    loss = 3.0 - a / 12
    mass = np.stack([1 - b / 12, 1 - b / 12], axis=1)
    curves = types.SimpleNamespace(
        steps=steps, loss=loss, performance=types.SimpleNamespace(values=-np.abs(steps - 3.0)),
        lens=curves_lib.Lens('aligned', mass, mass, mass, np.zeros(9)),
        transferring_neurons=np.ones(9),
        solved=None)
    out = analysis.analyze(curves, analysis.Settings(smooth_window=1))
    self.assertAlmostEqual(out.eq1_vs_lens, -1.0)
    self.assertGreater(out.eq1_vs_lens_levels, 0.99)

  def test_the_check_is_judged_against_the_scrambled_control(self):
    check = analysis.eq1_lens_check({'php': [0.9, 0.95, 0.92], CLONE: [0.3, 0.5, 0.4],
                                     SCRAMBLED: [0.2, 0.45, 0.35]}, SCRAMBLED)
    self.assertEqual(sorted(check), ['php', CLONE])
    self.assertTrue(check['php']['exceeds'])
    self.assertIn('exceeds the scrambled control', check['php']['sentence'])
    self.assertIn('0.92 [', check['php']['sentence'])
    self.assertFalse(check[CLONE]['exceeds'])
    self.assertIn('does not exceed the scrambled control\'s, so the check cannot support Eq. 1 '
                  'at this scale', check[CLONE]['sentence'])
    self.assertIn('0.33 [', check[CLONE]['sentence'])  # the scrambled control's mean, shown
    alone = analysis.eq1_lens_check({'php': [0.9, 0.95]}, None)
    self.assertIn('no scrambled control', alone['php']['sentence'])
    self.assertFalse(alone['php']['exceeds'])

  def test_the_report_says_so(self):
    # The case in changes: the clone agrees with the lens as much as the scrambled one.
    study = _study(dynamics={CLONE: [_analysis(r) for r in (0.93, 0.95, 0.94)],
                             SCRAMBLED: [_analysis(r) for r in (0.91, 0.93, 0.92)]})
    page = '\n'.join(study_report._eq1_section(study))
    self.assertIn('r of changes | r of levels', page)
    self.assertIn(f'{CLONE}: Eq. 1 agrees with the lens (r of step-to-step changes 0.94 [', page)
    self.assertIn('against 0.92 [', page)
    self.assertIn('the check cannot support Eq. 1 at this scale', page)
    findings = '\n'.join(study_report._findings(study))
    self.assertIn('the check cannot support Eq. 1 at this scale', findings)


if __name__ == '__main__':
  absltest.main()
